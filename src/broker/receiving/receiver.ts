import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ReceivedMessage } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import type { Delivery } from "../../store/message-streams.js";
import { PullInterruptedError } from "../../store/pull-errors.js";
import type { Store } from "../../store/store.js";
import { metricsOf } from "../broker-metrics.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { InvalidArgumentError } from "../errors.js";
import type { MessageLocks } from "../locks/message-locks.js";
import { expireIfDue } from "../messages/expiry.js";
import { decodeStored } from "../messages/message-codec.js";
import { deadLetter } from "../messages/settlement-actions.js";
import { longestPullMs } from "./longest-pull.js";
import { ReceiveCredit } from "./receive-credit.js";

export interface ReceiveOptions {
  /** Remove each message as it is delivered instead of locking it. @default false */
  receiveAndDelete: boolean;
  /** Unsettled messages allowed at once on the stream. @default 1 */
  prefetch: number;
  /** End after this many messages; 0 for no limit. @default 0 */
  maxMessages: number;
  /** End when nothing arrives for this long; 0 to wait until cancelled. @default 0 */
  maxWaitMs: number;
  signal: AbortSignal;
}

/** What a receive stream hands out: a message, or deliveries to drop (see MessagesRecalled). */
export type ReceiveEvent =
  | { kind: "message"; message: ReceivedMessage }
  | { kind: "recalled"; lockTokens: string[] };

export const MAX_PREFETCH = 1000;
/** How much earlier than JetStream the broker considers a message lock expired. */
const LOCK_MARGIN_MS = 100;

/**
 * Delivers the messages of a session-less entity to one receiver. Receivers compete through
 * the entity's shared JetStream pull consumer; each pull asks only for as many messages as
 * the stream has credit for, so no message waits in a stream that cannot take it.
 */
export async function* receiveMessages(
  store: Store,
  locks: MessageLocks,
  entity: ResolvedEntity,
  options: ReceiveOptions,
): AsyncGenerator<ReceiveEvent> {
  checkOptions(entity, options);
  const credit = new ReceiveCredit(options.prefetch || 1);
  let delivered = 0;
  let idleSince = Date.now();
  const { signal } = options;
  const metrics = metricsOf(store);
  // A pull waits at most this long before it is renewed (and the stream checks its limits).
  const longestPull = longestPullMs(store.replicas);
  while (!signal.aborted && (options.maxMessages === 0 || delivered < options.maxMessages)) {
    // Time spent waiting for the client to settle is not idle time (max_wait).
    if (credit.available <= 0) {
      await credit.whenAvailable(signal);
      idleSince = Date.now();
    }
    if (signal.aborted) return;
    const left =
      options.maxMessages === 0
        ? credit.available
        : Math.min(credit.available, options.maxMessages - delivered);
    const waitMs =
      options.maxWaitMs === 0 ? longestPull : options.maxWaitMs - (Date.now() - idleSince);
    if (waitMs <= 0) return;
    const batch = await store.messages.fetch(entity.streamId, left, Math.min(waitMs, longestPull));
    const stop = () => batch.stop();
    signal.addEventListener("abort", stop);
    try {
      for await (const delivery of batch) {
        const message = await admit(store, entity, delivery);
        if (!message) continue;
        if (options.receiveAndDelete) {
          await delivery.ack();
        } else {
          credit.take();
          const lock = locks.add({
            entity: entity.identity,
            entityPath: entity.address.path,
            // JetStream's ack_wait started when the server sent the message, a moment ago;
            // the margin keeps the broker from honouring a lock the server already let go.
            lockedUntil: Date.now() - LOCK_MARGIN_MS + entity.settings.lockDurationMs,
            target: { kind: "active", delivery },
            message,
            onEnd: () => credit.give(),
            session: undefined,
          });
          message.lockToken = lock.token;
          message.lockedUntil = timestampFromMs(lock.lockedUntil);
        }
        delivered++;
        idleSince = Date.now();
        metrics.delivered(entity, 1);
        yield { kind: "message", message };
      }
    } catch (error) {
      // A pull given up for missed heartbeats: its stray messages come back after their
      // lock (ack_wait) ends; just pull again.
      if (!(error instanceof PullInterruptedError)) throw error;
    } finally {
      signal.removeEventListener("abort", stop);
    }
  }
}

/**
 * Turns a delivery into the message to hand out; expires it instead when its time to live
 * has passed, or dead-letters it when this delivery would exceed max_delivery_count.
 */
async function admit(
  store: Store,
  entity: ResolvedEntity,
  delivery: Delivery,
): Promise<ReceivedMessage | undefined> {
  const message = decodeStored(delivery.data);
  message.sequenceNumber = BigInt(delivery.streamSequence);
  message.deliveryCount = delivery.deliveryCount;
  if (await expireIfDue(store, entity, message, () => delivery.ack())) return undefined;
  if (delivery.deliveryCount > entity.settings.maxDeliveryCount) {
    await deadLetter(store, entity, message, {
      reason: "MaxDeliveryCountExceeded",
      cause: "max_delivery_count",
      description: `The message was delivered ${entity.settings.maxDeliveryCount} times without being completed.`,
    });
    await delivery.ack();
    return undefined;
  }
  return message;
}

export function checkOptions(entity: ResolvedEntity, options: ReceiveOptions): void {
  const path = entity.address.path;
  if (options.prefetch < 0 || options.prefetch > MAX_PREFETCH) {
    throw new InvalidArgumentError("prefetch", `prefetch must be between 0 and ${MAX_PREFETCH}.`, {
      entityPath: path,
    });
  }
  if (options.maxMessages < 0) {
    throw new InvalidArgumentError("max_messages", "max_messages must not be negative.", {
      entityPath: path,
    });
  }
  if (options.maxWaitMs < 0) {
    throw new InvalidArgumentError("max_wait", "max_wait must not be negative.", {
      entityPath: path,
    });
  }
}
