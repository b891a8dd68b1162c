import type { Delivery, DeliveryBatch } from "./delivery.js";
import { PullInterruptedError } from "./pull-errors.js";
import { readyGroups } from "./ready-groups.js";
import {
  isSameMessage,
  type LeaderCopy,
  removedThroughLog,
  type StreamLog,
} from "./replicated-removal.js";

/** The stream leader's first message of the session at or after `from`, if any. */
export type NextOnLeader = (
  from: number,
) => Promise<(LeaderCopy & { sequence: number }) | undefined>;

/** What the leader's copy of the session says of one delivery. */
type Verdict =
  /** Handed out; `held` is the leader's message at its number, when it was read. */
  { kind: "hand-out"; held?: LeaderCopy } | { kind: "drop" } | { kind: "skipped"; missing: number };

/**
 * The deliveries of a session consumer's `batch`, each checked against the session as the
 * stream's leader holds it: a delivery must be the leader's next message of the session
 * after the one handed out before (`position.from`). Each is settled through the stream's
 * log (removedThroughLog), with the leader's copy read here: no second read.
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
 *
 * The deliveries that have arrived together are checked with their reads in flight at
 * once, each asking from the number after the one before it (what `position.from` will be
 * if that one is handed out; if it is dropped, the leader held nothing of the session up
 * to it, so the answer is the same): a burst costs one round trip, not one per message,
 * and reaches the session receiver still as a burst (one record write).
 */
export function inLeaderOrder(
  batch: DeliveryBatch,
  position: { from: number },
  nextOnLeader: NextOnLeader,
  log: StreamLog,
): DeliveryBatch {
  return {
    stop: () => batch.stop(),
    async *[Symbol.asyncIterator]() {
      let from = position.from;
      for await (const group of readyGroups(batch)) {
        const verdicts = group.map((delivery) => {
          const verdict = verdictOf(delivery, from, nextOnLeader, log);
          from = delivery.streamSequence + 1;
          return verdict;
        });
        for (const [index, delivery] of group.entries()) {
          const verdict = await (verdicts[index] as Promise<Verdict>);
          if (verdict.kind === "skipped") {
            batch.stop();
            throw new PullInterruptedError(
              `the consumer's copy lacks message ${verdict.missing} of the session (delivered ${delivery.streamSequence})`,
            );
          }
          if (verdict.kind === "drop") continue;
          position.from = delivery.streamSequence + 1;
          const held = verdict.held
            ? Promise.resolve(verdict.held)
            : log.readOnLeader(delivery.streamSequence);
          yield removedThroughLog(delivery, log, held);
        }
      }
    },
  };
}

async function verdictOf(
  delivery: Delivery,
  from: number,
  nextOnLeader: NextOnLeader,
  log: StreamLog,
): Promise<Verdict> {
  const sequence = delivery.streamSequence;
  let next: Awaited<ReturnType<NextOnLeader>>;
  try {
    next = await nextOnLeader(from);
  } catch {
    return { kind: "hand-out" };
  }
  if (next !== undefined && next.sequence <= sequence) {
    if (next.sequence === sequence && isSameMessage(next, delivery)) {
      return { kind: "hand-out", held: next };
    }
    return { kind: "skipped", missing: next.sequence };
  }
  let held: LeaderCopy | undefined;
  try {
    held = await log.readOnLeader(sequence);
  } catch {
    return { kind: "hand-out" };
  }
  if (held !== undefined && isSameMessage(held, delivery)) return { kind: "hand-out", held };
  return { kind: "drop" };
}
