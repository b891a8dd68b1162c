import { create } from "@bufbuild/protobuf";
import type { Message } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import {
  type ResubmitResult,
  ResubmitResultSchema,
} from "../../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import type { Store } from "../../store/store.js";
import { sessionToken, topicSubject } from "../../store/subjects.js";
import { resolvedFromRecord } from "../entities/entity-resolver.js";
import { EntityNotFoundError, InvalidArgumentError } from "../errors.js";
import { checkListLength } from "../limits/request-list-limits.js";
import { noteExpiringMessages } from "../messages/expiry.js";
import { internalPublishId } from "../messages/internal-publish-id.js";
import { decodeStored, encodeStored } from "../messages/message-codec.js";
import { validateBatch } from "../messages/message-validation.js";
import { storedForm } from "../messages/stored-form.js";
import { toSendError } from "../sending/send-error.js";
import { type IndexedSessions, sendBatch } from "../sending/sender.js";
import { type DeadLetterPair, resolveDeadLetterPair } from "./dead-letter-source.js";

/** Sequence numbers per ResubmitDeadLetteredMessages: whole messages move, as Peek reads ≤ 250. */
export const MAX_RESUBMIT_SEQUENCE_NUMBERS = 250;

/**
 * Moves dead-lettered messages back to their queue or subscription. Per message, in two
 * steps that are each safe to repeat:
 *   1. store it in the entity under a Nats-Msg-Id made from the dead-letter stream and the
 *      message's sequence number there, so JetStream's duplicate window drops a second store
 *      of the same dead-lettered message (a repeat answers with the first copy's sequence);
 *   2. delete it from the dead-letter queue.
 * A call that stopped between the two (broker died, store unavailable) left the message in
 * both; repeating it finds the message still dead-lettered, step 1 is answered as a
 * duplicate and step 2 completes the move: one copy, none lost. A message no longer in the
 * dead-letter queue is reported, not an error.
 */
export async function resubmitDeadLettered(
  store: Store,
  path: string,
  sequenceNumbers: readonly bigint[],
  indexed: IndexedSessions,
): Promise<ResubmitResult[]> {
  checkListLength(sequenceNumbers, MAX_RESUBMIT_SEQUENCE_NUMBERS, "sequence_numbers", {
    entityPath: path,
  });
  if (sequenceNumbers.length === 0) {
    throw new InvalidArgumentError(
      "sequence_numbers",
      "sequence_numbers is empty; name the dead-lettered messages to resubmit.",
      { entityPath: path },
    );
  }
  const pair = await resolveDeadLetterPair(store, path);
  const results: ResubmitResult[] = [];
  // One at a time: the order of resubmitted messages in the entity is that of the request.
  for (const sequence of sequenceNumbers) {
    results.push(await resubmitOne(store, pair, sequence, indexed));
  }
  return results;
}

async function resubmitOne(
  store: Store,
  { source, deadLetter }: DeadLetterPair,
  sequence: bigint,
  indexed: IndexedSessions,
): Promise<ResubmitResult> {
  const notFound = create(ResubmitResultSchema, { sequenceNumber: sequence, resubmitted: false });
  if (sequence < 1n || sequence > BigInt(Number.MAX_SAFE_INTEGER)) return notFound;
  const stored = await store.messages.getActive(deadLetter.layout, Number(sequence));
  if (!stored) return notFound;
  const original = decodeStored(stored.data).message;
  // A new message: no schedule (it is due now); id, session, properties and body kept.
  const message: Message = { ...(original as Message), scheduledEnqueueTime: undefined };
  const publishId = internalPublishId("resubmit", deadLetter.streamId, stored.sequence);
  const storedAs =
    source.record.kind === "subscription"
      ? await resubmitToSubscription(store, { source, deadLetter }, message, publishId)
      : ((await sendBatch(store, source, [message], { publishIds: [publishId], indexed }))[0]
          ?.sequenceNumber ?? 0n);
  await store.messages.deleteMessage(deadLetter.streamId, stored.sequence);
  return create(ResubmitResultSchema, {
    sequenceNumber: sequence,
    resubmitted: true,
    resubmittedSequenceNumber: storedAs,
  });
}

/**
 * A subscription's messages are copies of its topic's: the message is stored in the topic
 * stream under a subject that only this subscription's slot takes (its rules are not
 * applied again: the message had passed them), and JetStream copies it to the subscription.
 * The sequence number returned is the topic stream's.
 */
async function resubmitToSubscription(
  store: Store,
  { source }: DeadLetterPair,
  message: Message,
  publishId: string,
): Promise<bigint> {
  const link = source.record.link;
  const topic = link ? await store.entities.get(link.topicKey) : undefined;
  if (!link || !topic) throw new EntityNotFoundError(source.address.parentPath);
  const topicEntity = resolvedFromRecord(topic.record);
  validateBatch(source, [message]);
  const slots = new Array<boolean>(link.slot + 1).fill(false);
  slots[link.slot] = true;
  try {
    await noteExpiringMessages(store, topicEntity, [message]);
    const { stored } = storedForm(source, message, Date.now());
    const { sequence } = await store.messages.publishToTopic(
      link.topicStreamId,
      topicSubject(link.topicStreamId, message.sessionId, slots),
      encodeStored(stored),
      publishId,
    );
    if (source.settings.requiresSession) {
      await store.sessionIndex.offer(source.streamId, sessionToken(message.sessionId));
    }
    return BigInt(sequence);
  } catch (error) {
    throw toSendError(topicEntity, error);
  }
}
