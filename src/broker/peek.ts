import { MessageState, type ReceivedMessage } from "../../gen/ts/sessionbus/v1/message_pb.js";
import type { Store } from "../store/store.js";
import type { ResolvedEntity } from "./entity-resolver.js";
import { InvalidArgumentError } from "./errors.js";
import { decodeStored } from "./message-codec.js";

export const MAX_PEEK = 250;

/**
 * Reads up to `max` messages from `fromSequence` on without locking them: the active ones in
 * stream order, merged with deferred ones (stored apart, under their original sequence).
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
  const limit = max || 1;
  const [active, deferred] = await Promise.all([
    peekActive(store, entity, Number(fromSequence), limit, sessionId),
    peekDeferred(store, entity, fromSequence, sessionId),
  ]);
  return [...active, ...deferred]
    .sort((a, b) => (a.sequenceNumber < b.sequenceNumber ? -1 : 1))
    .slice(0, limit);
}

async function peekActive(
  store: Store,
  entity: ResolvedEntity,
  from: number,
  limit: number,
  sessionId: string | undefined,
): Promise<ReceivedMessage[]> {
  const found: ReceivedMessage[] = [];
  let next = from;
  while (found.length < limit) {
    const stored = await store.messages.nextActive(
      entity.layout,
      next,
      sessionId === undefined ? undefined : { id: sessionId },
    );
    if (!stored) break;
    const message = decodeStored(stored.data);
    message.sequenceNumber = BigInt(stored.sequence);
    message.state = MessageState.ACTIVE;
    found.push(message);
    next = stored.sequence + 1;
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
