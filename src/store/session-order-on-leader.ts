import type { DeliveryBatch } from "./delivery.js";
import { PullInterruptedError } from "./pull-errors.js";
import {
  isSameMessage,
  type LeaderCopy,
  type ReadOnLeader,
  sameOnLeader,
} from "./replicated-removal.js";

/** The stream leader's first message of the session at or after `from`, if any. */
export type NextOnLeader = (
  from: number,
) => Promise<(LeaderCopy & { sequence: number }) | undefined>;

/**
 * The deliveries of a session consumer's `batch`, each checked against the session as the
 * stream's leader holds it: a delivery must be the leader's next message of the session
 * after the one handed out before (`position.from`).
 *
 * Why: a consumer hands out what its own node's copy of the stream holds, and on
 * nats-server 2.9.10 that copy can lack a message the leader holds, with another message at
 * its number (a leader restarted as sends were in flight, architecture.md, Replicas). A
 * consumer led from there skipped the session's message and handed out the next ones; a
 * later holder got it after them (1 of 30 loaded rolling restarts).
 *
 * - The leader's next message is the delivered one: handed out.
 * - The leader's next message comes before it (or at its number, but another): the copy
 *   lacks it. The pull ends as interrupted, and the session's reader recreates its
 *   consumer (whose leader may sit on another node), as for a jump in its numbering.
 * - The leader has nothing of the session there: the delivery was removed already (a copy
 *   that has not applied the removal yet) or never stored for good. It is dropped, unless
 *   the leader holds that very message by its number (its index of the session's subject
 *   once lacked a message it held): then it is handed out.
 *
 * When the leader cannot be asked, the delivery is handed out: a settled message may come
 * again (the session record's guard drops it), a live one is never held back.
 */
export function inLeaderOrder(
  batch: DeliveryBatch,
  position: { from: number },
  nextOnLeader: NextOnLeader,
  readOnLeader: ReadOnLeader,
): DeliveryBatch {
  return {
    stop: () => batch.stop(),
    async *[Symbol.asyncIterator]() {
      for await (const delivery of batch) {
        const sequence = delivery.streamSequence;
        let next: Awaited<ReturnType<NextOnLeader>>;
        try {
          next = await nextOnLeader(position.from);
        } catch {
          position.from = sequence + 1;
          yield delivery;
          continue;
        }
        if (next !== undefined && next.sequence <= sequence) {
          if (next.sequence === sequence && isSameMessage(next, delivery)) {
            position.from = sequence + 1;
            yield delivery;
            continue;
          }
          batch.stop();
          throw new PullInterruptedError(
            `the consumer's copy lacks message ${next.sequence} of the session (delivered ${sequence})`,
          );
        }
        if (await sameOnLeader(delivery, readOnLeader).catch(() => true)) {
          position.from = sequence + 1;
          yield delivery;
        }
      }
    },
  };
}
