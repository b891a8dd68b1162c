import type { TimerDelivery, TimerFeed } from "../../store/schedule-timers.js";
import type { Store } from "../../store/store.js";
import { type ResolvedEntity, resolveSendTarget } from "../entities/entity-resolver.js";
import {
  EntityNotFoundError,
  InvalidArgumentError,
  MessageTooLargeError,
  SessionIdRequiredError,
} from "../errors.js";
import { internalPublishId } from "../messages/internal-publish-id.js";
import { decodeStored } from "../messages/message-codec.js";
import { deadLetter } from "../messages/settlement-actions.js";
import { sendBatch } from "../sending/sender.js";

/** Timers this process works on at once. */
const MAX_IN_FLIGHT = 64;
/** A far-off timer is looked at again after this long at the latest (bounds the nak delay). */
const MAX_WAIT_MS = 6 * 3600_000;
/** After a failure (NATS away, say), the timer or the pull is retried after this long. */
const RETRY_MS = 1000;

/** The running scheduler of one broker process. */
export interface Scheduler {
  /** Stops pulling timers and waits for the activations under way. */
  stop(): Promise<void>;
}

/**
 * Activates scheduled messages when they are due. Every broker process runs one; they share
 * the durable timer consumer, so each timer is worked on by one process at a time, and a
 * timer held by a process that died comes back to another after a few seconds.
 */
export function startScheduler(store: Store): Scheduler {
  let stopped = false;
  let feed: TimerFeed | undefined;
  let wake: (() => void) | undefined;
  const inflight = new Set<Promise<void>>();
  const halt = () => {
    stopped = true;
    feed?.stop();
    wake?.();
  };
  void store.closed.then(halt);
  const loop = (async () => {
    while (!stopped) {
      try {
        feed = await store.scheduleTimers.feed(MAX_IN_FLIGHT);
        if (stopped) feed.stop();
        for await (const delivery of feed) {
          const left = delivery.timer.dueAt - Date.now();
          if (left > 0) {
            delivery.later(Math.min(left, MAX_WAIT_MS));
            continue;
          }
          const work = activate(store, delivery).finally(() => inflight.delete(work));
          inflight.add(work);
          if (inflight.size >= MAX_IN_FLIGHT) await Promise.race(inflight);
        }
      } catch {
        // The pull failed (NATS away, or closing): try again unless stopping.
      }
      if (!stopped) await pause(RETRY_MS, (resolve) => (wake = resolve));
    }
  })();
  return {
    stop: async () => {
      halt();
      await loop;
      await Promise.allSettled(inflight);
    },
  };
}

/**
 * Makes one due scheduled message active: it is sent through the same path as Send (so it
 * gets a new sequence number, its TTL starts now, and its session is offered to
 * accept-next), then the scheduled copy is deleted and the timer removed. A crash between
 * the steps repeats the activation; its publish id (from the scheduled copy's sequence
 * number) makes the stream drop the repeat as a duplicate.
 */
async function activate(store: Store, delivery: TimerDelivery): Promise<void> {
  const { timer } = delivery;
  try {
    const entity = await currentEntity(store, timer.entityPath, timer.streamId);
    // Entity deleted (or re-created): nothing of it to activate.
    if (!entity) return await delivery.done();
    const stored = await store.messages.getScheduled(timer.streamId, timer.sequence);
    // Cancelled, or activated already by a process that died before removing the timer.
    if (!stored) return await delivery.done();
    const scheduled = decodeStored(stored.data);
    const message = scheduled.message;
    if (message) {
      try {
        await sendBatch(store, entity, [message], {
          publishIds: [internalPublishId("activate", timer.streamId, timer.sequence)],
        });
      } catch (error) {
        // The entity changed since (a smaller max_message_size, say): it can never be sent.
        // A topic has no dead-letter queue: the message is dropped there.
        if (!isRefusal(error)) throw error;
        if (entity.record.kind !== "topic") {
          await deadLetter(store, entity, scheduled, {
            reason: "ScheduledActivationRefused",
            cause: "activation_refused",
            description: error instanceof Error ? error.message : String(error),
          });
        }
      }
    }
    await store.messages.deleteMessage(timer.streamId, timer.sequence);
    await delivery.done();
  } catch {
    try {
      delivery.later(RETRY_MS);
    } catch {
      // The connection is closing: JetStream hands the timer out again after its ack wait.
    }
  }
}

async function currentEntity(
  store: Store,
  path: string,
  streamId: string,
): Promise<ResolvedEntity | undefined> {
  try {
    const entity = await resolveSendTarget(store.entities, path);
    return entity.streamId === streamId ? entity : undefined;
  } catch (error) {
    if (error instanceof EntityNotFoundError) return undefined;
    throw error;
  }
}

function isRefusal(error: unknown): boolean {
  return (
    error instanceof InvalidArgumentError ||
    error instanceof MessageTooLargeError ||
    error instanceof SessionIdRequiredError
  );
}

/** Waits `ms` (without keeping the process alive), or until woken. */
function pause(ms: number, onWake: (wake: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    onWake(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
