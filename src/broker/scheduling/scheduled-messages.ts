import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import {
  type Message,
  MessageState,
  ReceivedMessageSchema,
} from "../../../gen/ts/sessionbus/v1/message_pb.js";
import {
  type SendResult,
  SendResultSchema,
} from "../../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import type { Store } from "../../store/store.js";
import { scheduledSubject } from "../../store/subjects.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { BrokerError, InvalidArgumentError, StoreUnavailableError } from "../errors.js";
import { checkListLength, MAX_CANCEL_SEQUENCE_NUMBERS } from "../limits/request-list-limits.js";
import { encodeStored } from "../messages/message-codec.js";
import { checkBatchCount, checkTimestamp, validateBatch } from "../messages/message-validation.js";
import { type SendOptions, sendBatch } from "../sending/sender.js";

/**
 * Send: a message whose scheduled_enqueue_time is in the future is scheduled, the others are
 * sent at once. The batch stays all-or-nothing: if either part fails, the other is removed.
 */
export async function sendOrSchedule(
  store: Store,
  entity: ResolvedEntity,
  messages: Message[],
  options: SendOptions = {},
): Promise<SendResult[]> {
  checkBatchCount(messages, entity.address.path);
  const now = Date.now();
  const dueAt = messages.map((message) => futureTime(message, now));
  // The hot path: nothing scheduled, nothing changes.
  if (dueAt.every((at) => at === undefined)) return sendBatch(store, entity, messages, options);
  validateBatch(entity, messages);
  const later = messages.flatMap((message, i) => {
    const at = dueAt[i];
    return at === undefined ? [] : [{ message, at, index: i }];
  });
  const atOnce = messages.flatMap((message, i) =>
    dueAt[i] === undefined ? [{ message, index: i }] : [],
  );
  const [scheduled, sent] = await Promise.allSettled([
    storeScheduled(
      store,
      entity,
      later.map((l) => l.message),
      later.map((l) => l.at),
    ),
    atOnce.length === 0
      ? Promise.resolve([])
      : sendBatch(
          store,
          entity,
          atOnce.map((a) => a.message),
          options,
        ),
  ]);
  if (scheduled.status === "rejected" || sent.status === "rejected") {
    for (const part of [scheduled, sent]) {
      if (part.status === "fulfilled") await removeStored(store, entity, part.value);
    }
    const failed = (scheduled.status === "rejected" ? scheduled : sent) as PromiseRejectedResult;
    throw failed.reason;
  }
  const results: SendResult[] = new Array(messages.length);
  later.forEach((l, i) => {
    results[l.index] = scheduled.value[i] as SendResult;
  });
  atOnce.forEach((a, i) => {
    results[a.index] = sent.value[i] as SendResult;
  });
  return results;
}

/**
 * ScheduleMessages: the request's time applies to every message (and is what receivers see
 * as their scheduled_enqueue_time). A time that is not in the future sends them at once.
 */
export async function scheduleMessages(
  store: Store,
  entity: ResolvedEntity,
  messages: Message[],
  at: Timestamp | undefined,
): Promise<bigint[]> {
  const path = entity.address.path;
  if (at === undefined) {
    throw new InvalidArgumentError(
      "scheduled_enqueue_time",
      "scheduled_enqueue_time is required: say when the messages become receivable.",
      { entityPath: path },
    );
  }
  checkTimestamp(at, "scheduled_enqueue_time", path);
  checkBatchCount(messages, path);
  const timed = messages.map((message) => ({ ...message, scheduledEnqueueTime: at }));
  const results = await sendOrSchedule(store, entity, timed);
  return results.map((r) => r.sequenceNumber);
}

/**
 * Removes scheduled messages. A sequence number that names no scheduled message of the
 * entity (never scheduled, already active, already cancelled) is ignored, as Service Bus
 * does: cancelling is idempotent, so a retried call is safe.
 */
export async function cancelScheduled(
  store: Store,
  entity: ResolvedEntity,
  sequences: bigint[],
): Promise<void> {
  const path = entity.address.path;
  if (sequences.length === 0) {
    throw new InvalidArgumentError("sequence_numbers", "sequence_numbers is empty.", {
      entityPath: path,
    });
  }
  checkListLength(sequences, MAX_CANCEL_SEQUENCE_NUMBERS, "sequence_numbers", {
    entityPath: path,
  });
  const bad = sequences.find((s) => s <= 0n);
  if (bad !== undefined) {
    throw new InvalidArgumentError(
      "sequence_numbers",
      `sequence_numbers holds ${bad}; sequence numbers start at 1.`,
      { entityPath: path },
    );
  }
  try {
    await Promise.all(
      [...new Set(sequences)].map(async (sequence) => {
        // Only a scheduled copy is deleted, never an active message of that number. The
        // copy keeps its number until deleted, so activation cannot move it meanwhile.
        const found = await store.messages.getScheduled(entity.streamId, Number(sequence));
        if (found) await store.messages.deleteMessage(entity.streamId, found.sequence);
      }),
    );
  } catch (error) {
    throw new StoreUnavailableError(`cancelling scheduled messages of "${path}"`, {
      cause: error,
    });
  }
}

/** The scheduled_enqueue_time of a message when it lies after `now`. */
function futureTime(message: Message, now: number): number | undefined {
  if (message.scheduledEnqueueTime === undefined) return undefined;
  const at = timestampMs(message.scheduledEnqueueTime);
  return at > now ? at : undefined;
}

/**
 * Stores each message on its entity's scheduled subject (where it gets its sequence number
 * and peek sees it, but no consumer delivers it), then one durable timer per message.
 */
async function storeScheduled(
  store: Store,
  entity: ResolvedEntity,
  messages: Message[],
  dueAt: number[],
): Promise<SendResult[]> {
  const now = Date.now();
  const outcomes = await Promise.allSettled(
    messages.map((message) => storeOne(store, entity, message, now)),
  );
  const stored = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
  try {
    const failed = outcomes.find((o) => o.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    await store.scheduleTimers.add(
      stored.flatMap((result, i) =>
        result.duplicate
          ? []
          : [
              {
                entityPath: entity.address.path,
                streamId: entity.streamId,
                sequence: Number(result.sequenceNumber),
                dueAt: dueAt[i] as number,
              },
            ],
      ),
    );
  } catch (error) {
    await removeStored(store, entity, stored);
    throw error instanceof BrokerError
      ? error
      : new StoreUnavailableError(`scheduling messages in "${entity.address.path}"`, {
          cause: error,
        });
  }
  return stored;
}

async function storeOne(
  store: Store,
  entity: ResolvedEntity,
  message: Message,
  now: number,
): Promise<SendResult> {
  const messageId = message.messageId || randomUUID().replaceAll("-", "");
  const stored = create(ReceivedMessageSchema, {
    message: { ...message, messageId },
    enqueuedTime: timestampFromMs(now),
    state: MessageState.SCHEDULED,
  });
  const sessionId = entity.settings.requiresSession ? message.sessionId : undefined;
  // Duplicate detection applies when the message is scheduled, across scheduled and sent.
  const { sequence, duplicate } = await store.messages.publish(
    entity.streamId,
    scheduledSubject(entity.streamId, sessionId),
    encodeStored(stored),
    entity.settings.requiresDuplicateDetection ? messageId : undefined,
  );
  return create(SendResultSchema, { sequenceNumber: BigInt(sequence), messageId, duplicate });
}

/** Takes back what a failed batch stored (not the originals its duplicates pointed to). */
async function removeStored(
  store: Store,
  entity: ResolvedEntity,
  results: SendResult[],
): Promise<void> {
  await Promise.allSettled(
    results.flatMap((r) =>
      r.duplicate ? [] : [store.messages.deleteMessage(entity.streamId, Number(r.sequenceNumber))],
    ),
  );
}
