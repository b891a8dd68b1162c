/**
 * How many items one request may list (lock tokens, sequence numbers) and how long a lock
 * token may be: checked before anything is looked up, so a request's work stays bounded.
 */

import { type ErrorSubject, InvalidArgumentError } from "../errors.js";
import { checkCharacterLimit } from "./character-limits.js";

/** Lock tokens per Settle, SettleStream frame or RenewMessageLock: a send batch's worth. */
export const MAX_LOCK_TOKENS = 4500;
/** Sequence numbers per CancelScheduledMessages: a ScheduleMessages batch's worth. */
export const MAX_CANCEL_SEQUENCE_NUMBERS = 4500;
/** Sequence numbers per ReceiveDeferred: it returns whole messages, as Peek does (≤ 250). */
export const MAX_DEFERRED_SEQUENCE_NUMBERS = 250;
/**
 * Characters of one lock token. The broker issues UUIDs (36 characters); a longer unknown
 * token is refused as malformed, a shorter one is only unknown (MESSAGE_LOCK_LOST).
 */
export const MAX_LOCK_TOKEN_LENGTH = 128;

/** Throws InvalidArgumentError on `field` if `list` holds more than `limit` items. */
export function checkListLength(
  list: readonly unknown[],
  limit: number,
  field: string,
  subject: ErrorSubject = {},
): void {
  if (list.length <= limit) return;
  throw new InvalidArgumentError(
    field,
    `${field} holds ${list.length} items; at most ${limit} are allowed in one request.`,
    subject,
  );
}

/** The lock tokens of one request: at most MAX_LOCK_TOKENS, each of MAX_LOCK_TOKEN_LENGTH. */
export function checkLockTokens(tokens: readonly string[], subject: ErrorSubject = {}): void {
  checkListLength(tokens, MAX_LOCK_TOKENS, "lock_tokens", subject);
  tokens.forEach((token, i) => {
    checkCharacterLimit(token, MAX_LOCK_TOKEN_LENGTH, `lock_tokens[${i}]`, subject);
  });
}
