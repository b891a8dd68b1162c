import { MessageState, type ReceivedMessage } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import { deadLetterStreamId } from "../../store/entity-record.js";
import type { Store } from "../../store/store.js";
import { activeSubject, deferredSubject } from "../../store/subjects.js";
import { type DeadLetterCause, metricsOf } from "../broker-metrics.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { internalPublishId } from "./internal-publish-id.js";
import { durableCopy, encodeStored } from "./message-codec.js";

export interface DeadLetterInfo {
  reason: string;
  description: string;
  /** Who or what dead-lettered it, for the metrics (the reason is free text). */
  cause: DeadLetterCause;
}

/**
 * Stores a copy of the message in the entity's dead-letter queue, keeping its session id
 * and properties. The caller removes the original afterwards; a crash in between leaves
 * the original to be delivered again, never a lost message.
 */
export async function deadLetter(
  store: Store,
  entity: ResolvedEntity,
  message: ReceivedMessage,
  info: DeadLetterInfo,
): Promise<void> {
  const copy = durableCopy(message);
  copy.sequenceNumber = 0n;
  copy.deliveryCount = 0;
  copy.state = MessageState.ACTIVE;
  copy.deadLetterReason = info.reason;
  copy.deadLetterDescription = info.description;
  copy.deadLetterSource = entity.record.name;
  const dlq = deadLetterStreamId(entity.record.streamId);
  // A dead-letter queue never requires sessions: the copy goes to its session-less subject.
  await store.messages.publish(dlq, activeSubject(dlq, undefined), encodeStored(copy));
  metricsOf(store).deadLettered(entity, info.cause);
}

/**
 * Stores the deferred copy of a message under its original sequence number, where
 * ReceiveDeferred finds it with one direct get. The message id makes a retried defer of the
 * same delivery store one copy.
 */
export async function storeDeferred(
  store: Store,
  entity: ResolvedEntity,
  message: ReceivedMessage,
): Promise<void> {
  const copy = durableCopy(message);
  copy.state = MessageState.DEFERRED;
  const sequence = Number(message.sequenceNumber);
  await store.messages.publish(
    entity.streamId,
    deferredSubject(entity.streamId, sequence),
    encodeStored(copy),
    internalPublishId("defer", entity.streamId, sequence, message.deliveryCount),
  );
}
