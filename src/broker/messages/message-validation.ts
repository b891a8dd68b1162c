import { toBinary } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { type Message, MessageSchema } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { InvalidArgumentError, MessageTooLargeError, SessionIdRequiredError } from "../errors.js";
import { checkCharacterLimit, MAX_ID_LENGTH } from "../limits/character-limits.js";
import { durationArgumentMs } from "../limits/duration-argument.js";

// Defined with the other character limits; here too, for the code that validates messages.
export { MAX_ID_LENGTH };
export const MAX_PROPERTIES_BYTES = 64 * 1024;
export const MAX_BATCH_MESSAGES = 4500;
export const MAX_BATCH_BYTES = 1024 * 1024;

/**
 * Checks a batch against semantics §2, §3 and §8 before anything is stored, so a bad
 * message refuses the whole batch. Returns each message's encoded size.
 */
export function validateBatch(entity: ResolvedEntity, messages: Message[]): void {
  const path = entity.address.path;
  refuseDeadLetterTarget(entity);
  checkBatchCount(messages, path);
  let total = 0;
  messages.forEach((message, i) => {
    total += validateMessage(entity, message, `messages[${i}]`);
  });
  if (total > MAX_BATCH_BYTES) {
    throw new MessageTooLargeError(path, "messages", total, MAX_BATCH_BYTES);
  }
}

/**
 * Checks one message as a batch of one would be, but naming `field` (e.g. "request" of
 * RequestReply), so that it can be refused before any other work for it is done.
 */
export function validateSingleMessage(
  entity: ResolvedEntity,
  message: Message,
  field: string,
): void {
  refuseDeadLetterTarget(entity);
  validateMessage(entity, message, field);
}

function refuseDeadLetterTarget(entity: ResolvedEntity): void {
  if (!entity.address.deadLetter) return;
  const path = entity.address.path;
  throw new InvalidArgumentError(
    "entity_path",
    `"${path}" is a dead-letter queue; messages reach it only by dead-lettering. Send to "${entity.record.name}" instead.`,
    { entityPath: path },
  );
}

/** A batch holds 1 to MAX_BATCH_MESSAGES messages: checked before anything is done per message. */
export function checkBatchCount(messages: readonly Message[], entityPath: string): void {
  if (messages.length === 0) {
    throw new InvalidArgumentError("messages", "messages is empty: send at least one message.", {
      entityPath,
    });
  }
  if (messages.length > MAX_BATCH_MESSAGES) {
    throw new InvalidArgumentError(
      "messages",
      `A batch holds at most ${MAX_BATCH_MESSAGES} messages; this one has ${messages.length}. Split it.`,
      { entityPath },
    );
  }
}

function validateMessage(entity: ResolvedEntity, message: Message, field: string): number {
  const path = entity.address.path;
  checkLength(message.messageId, `${field}.message_id`, path);
  checkLength(message.sessionId, `${field}.session_id`, path);
  checkLength(message.replyToSessionId, `${field}.reply_to_session_id`, path);
  if (entity.settings.requiresSession && message.sessionId === undefined) {
    throw new SessionIdRequiredError(path, field);
  }
  const propertiesSize = Object.entries(message.applicationProperties).reduce(
    (sum, [key, value]) =>
      sum + Buffer.byteLength(key) + JSON.stringify(value.value, replacer).length,
    0,
  );
  if (propertiesSize > MAX_PROPERTIES_BYTES) {
    throw new InvalidArgumentError(
      `${field}.application_properties`,
      `${field}.application_properties hold about ${propertiesSize} bytes; at most ${MAX_PROPERTIES_BYTES} are allowed.`,
      { entityPath: path },
    );
  }
  // Any valid duration is taken; one past the year 9999 means "never" (see stored-form.ts).
  durationArgumentMs(message.timeToLive, `${field}.time_to_live`, Number.MAX_SAFE_INTEGER, path);
  if (message.scheduledEnqueueTime !== undefined) {
    checkTimestamp(message.scheduledEnqueueTime, `${field}.scheduled_enqueue_time`, path);
  }
  const size = toBinary(MessageSchema, message).length;
  if (size > entity.settings.maxMessageSizeBytes) {
    throw new MessageTooLargeError(path, field, size, entity.settings.maxMessageSizeBytes);
  }
  return size;
}

/** Protobuf's Timestamp range: years 1 to 9999, nanos within one second. */
const MIN_TIMESTAMP_SECONDS = -62_135_596_800n;
const MAX_TIMESTAMP_SECONDS = 253_402_300_799n;

/** A valid google.protobuf.Timestamp (scheduled_enqueue_time of a message or a request). */
export function checkTimestamp(value: Timestamp, field: string, entityPath: string): void {
  if (
    value.seconds < MIN_TIMESTAMP_SECONDS ||
    value.seconds > MAX_TIMESTAMP_SECONDS ||
    value.nanos < 0 ||
    value.nanos > 999_999_999
  ) {
    throw new InvalidArgumentError(
      field,
      `${field} is not a valid timestamp (years 1 to 9999, nanos 0 to 999,999,999).`,
      { entityPath },
    );
  }
}

function checkLength(value: string | undefined, field: string, entityPath: string): void {
  if (value !== undefined) checkCharacterLimit(value, MAX_ID_LENGTH, field, { entityPath });
}

/** A session id a request names (to accept, peek or under a lock): at most 128 characters. */
export function checkSessionId(sessionId: string, field: string, entityPath: string): void {
  checkCharacterLimit(sessionId, MAX_ID_LENGTH, field, { entityPath });
}

// Bytes and bigints in property values, measured by their JSON length.
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  return value;
}
