import { create } from "@bufbuild/protobuf";
import type { Message } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import {
  type SendResult,
  SendResultSchema,
} from "../../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import type { Store } from "../../store/store.js";
import { activeSubject, sessionToken } from "../../store/subjects.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { noteExpiringMessages } from "../messages/expiry.js";
import { encodeStored } from "../messages/message-codec.js";
import { validateBatch } from "../messages/message-validation.js";
import { storedForm } from "../messages/stored-form.js";
import { toSendError } from "./send-error.js";
import { sendToTopic } from "./topic-sender.js";

export interface SendOptions {
  /**
   * The Nats-Msg-Id of each message, in place of its message_id: the activation of a
   * scheduled message passes one derived from the scheduled copy, so that an activation
   * repeated after a crash stores the message once. @default the message_id, when the
   * entity has duplicate detection on; otherwise none
   */
  publishIds?: readonly string[];
  /** Sessions this process holds whose accept-next index entry is known to exist. */
  indexed?: IndexedSessions;
}

/**
 * Sessions held in this process that already have an unacked accept-next index entry: the
 * offer they were taken from, or one a Send published while they were held. A Send to
 * such a session need not publish another (a round trip per Send): while the session is
 * held, that entry is what brings it back to accept-next if the holder dies, and closing
 * the session offers it again if messages are left.
 */
export interface IndexedSessions {
  hasEntry(streamId: string, token: string): boolean;
  /** Called once entries for these sessions have been published. */
  entriesPublished(streamId: string, tokens: readonly string[]): void;
}

/**
 * Stores a batch: every message is published at once (one pipelined round trip for the
 * batch, not one per message). If any publish fails, the ones that succeeded are deleted
 * again, so the call either returns every sequence number or fails with nothing kept.
 */
export async function sendBatch(
  store: Store,
  entity: ResolvedEntity,
  messages: Message[],
  options: SendOptions = {},
): Promise<SendResult[]> {
  validateBatch(entity, messages);
  await noteExpiringMessages(store, entity, messages);
  const now = Date.now();
  if (entity.record.kind === "topic") {
    return sendToTopic(store, entity, messages, now, options.publishIds);
  }
  const outcomes = await Promise.allSettled(
    messages.map((message, i) => publishOne(store, entity, message, now, options.publishIds?.[i])),
  );
  const failed = outcomes.find((o) => o.status === "rejected");
  if (failed) {
    await rollBack(store, entity, outcomes);
    throw toSendError(entity, (failed as PromiseRejectedResult).reason);
  }
  try {
    await offerSessions(store, entity, messages, options.indexed);
  } catch (error) {
    await rollBack(store, entity, outcomes);
    throw toSendError(entity, error);
  }
  return outcomes.map((o) => (o as PromiseFulfilledResult<SendResult>).value);
}

/**
 * Tells accept-next that the batch's sessions have messages: one index entry per session,
 * published after the messages are stored so an accepted session never looks empty. Skips
 * sessions held here that have an entry already (see IndexedSessions).
 */
async function offerSessions(
  store: Store,
  entity: ResolvedEntity,
  messages: Message[],
  indexed: IndexedSessions | undefined,
): Promise<void> {
  if (!entity.settings.requiresSession) return;
  const { streamId } = entity;
  const tokens = [...new Set(messages.map((m) => sessionToken(m.sessionId)))].filter(
    (token) => !indexed?.hasEntry(streamId, token),
  );
  await Promise.all(tokens.map((token) => store.sessionIndex.offer(streamId, token)));
  indexed?.entriesPublished(streamId, tokens);
}

async function publishOne(
  store: Store,
  entity: ResolvedEntity,
  message: Message,
  now: number,
  publishId: string | undefined,
): Promise<SendResult> {
  const { messageId, stored } = storedForm(entity, message, now);
  // Session-less entities ignore a session id for routing; it stays on the message.
  const sessionId = entity.settings.requiresSession ? message.sessionId : undefined;
  const { sequence, duplicate } = await store.messages.publish(
    entity.streamId,
    activeSubject(entity.streamId, sessionId),
    encodeStored(stored),
    publishId ?? (entity.settings.requiresDuplicateDetection ? messageId : undefined),
  );
  return create(SendResultSchema, { sequenceNumber: BigInt(sequence), messageId, duplicate });
}

async function rollBack(
  store: Store,
  entity: ResolvedEntity,
  outcomes: PromiseSettledResult<SendResult>[],
): Promise<void> {
  await Promise.allSettled(
    outcomes.flatMap((o) =>
      o.status === "fulfilled" && !o.value.duplicate
        ? [store.messages.deleteMessage(entity.streamId, Number(o.value.sequenceNumber))]
        : [],
    ),
  );
}
