import { MessageState, type ReceivedMessage } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import type { StoredMessage } from "../../store/message-streams.js";
import type { Store } from "../../store/store.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { InvalidArgumentError } from "../errors.js";
import { decodeStored } from "../messages/message-codec.js";
import { checkSessionId } from "../messages/message-validation.js";

export const MAX_PEEK = 250;

/**
 * Reads up to `max` messages from `fromSequence` on without locking them: the active and the
 * scheduled ones in stream order, merged with deferred ones (stored apart, under their
 * original sequence).
 */
export async function peekMessages(
  store: Store,
  entity: ResolvedEntity,
  fromSequence: bigint,
  max: number,
  sessionId?: string,
): Promise<ReceivedMessage[]> {
  if (max < 0 || max > MAX_PEEK) {
    throw new InvalidArgumentError(
      "max_messages",
      `max_messages must be between 0 and ${MAX_PEEK}.`,
      {
        entityPath: entity.address.path,
      },
    );
  }
  if (fromSequence < 0n) {
    throw new InvalidArgumentError(
      "from_sequence_number",
      "from_sequence_number must not be negative.",
      {
        entityPath: entity.address.path,
      },
    );
  }
  if (sessionId !== undefined) checkSessionId(sessionId, "session_id", entity.address.path);
  const limit = max || 1;
  const session = sessionId === undefined ? undefined : { id: sessionId };
  const from = Number(fromSequence);
  const [active, scheduled, deferred] = await Promise.all([
    peekInOrder(
      (next) => store.messages.nextActive(entity.layout, next, session),
      from,
      limit,
      MessageState.ACTIVE,
    ),
    peekInOrder(
      (next) => store.messages.nextScheduled(entity.streamId, next, session),
      from,
      limit,
      MessageState.SCHEDULED,
    ),
    peekDeferred(store, entity, fromSequence, sessionId),
  ]);
  return [...active, ...scheduled, ...deferred]
    .sort((a, b) => (a.sequenceNumber < b.sequenceNumber ? -1 : 1))
    .slice(0, limit);
}

/**
 * Up to `limit` messages stored under their own sequence number (active ones, or scheduled
 * ones), in stream order from `from` on; `next` finds the first at or after a sequence.
 */
async function peekInOrder(
  next: (sequence: number) => Promise<StoredMessage | undefined>,
  from: number,
  limit: number,
  state: MessageState,
): Promise<ReceivedMessage[]> {
  const found: ReceivedMessage[] = [];
  let sequence = from;
  while (found.length < limit) {
    const stored = await next(sequence);
    if (!stored) break;
    const message = decodeStored(stored.data);
    message.sequenceNumber = BigInt(stored.sequence);
    message.state = state;
    found.push(message);
    sequence = stored.sequence + 1;
  }
  return found;
}

async function peekDeferred(
  store: Store,
  entity: ResolvedEntity,
  from: bigint,
  sessionId: string | undefined,
): Promise<ReceivedMessage[]> {
  const found: ReceivedMessage[] = [];
  for await (const stored of store.messages.deferred(entity.streamId)) {
    const message = decodeStored(stored.data);
    const inSession = sessionId === undefined || message.message?.sessionId === sessionId;
    if (message.sequenceNumber >= from && inSession) found.push(message);
  }
  return found;
}
