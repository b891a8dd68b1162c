import type { SessionRecord } from "../../store/session-records.js";

/**
 * The delivery counts of a session record (semantics §4, "Delivery count"). `counts` is
 * what the next delivery of a message starts from; `held` is the part the current lock
 * raised and nothing has made final yet. A close takes back exactly `held`, in the same
 * compare-and-set that frees the lock: a delivery counted by a write before it is taken back
 * whether or not its message reached the client, and a delivery write after it fails (the
 * lock is gone), so no interleaving of close and receive leaves a count raised. Each
 * function changes the record it is given (inside an updateSessionRecord change).
 */

/** Counts one more delivery under the current lock; returns the message's new count. */
export function raiseCount(record: SessionRecord, seq: number): number {
  const key = String(seq);
  const held = heldOf(record);
  const count = (record.counts[key] ?? 0) + 1;
  record.counts[key] = count;
  held[key] = (held[key] ?? 0) + 1;
  if (seq > (record.deliveredThrough ?? 0)) record.deliveredThrough = seq;
  return count;
}

/**
 * Whether the record shows message `seq` settled: it was delivered (a session's messages
 * are delivered in sequence order, so everything up to the highest sequence delivered
 * was) and it has no count left (a delivered message keeps one, 0 after a take-back, until
 * it is settled). Used with replicas, where a consumer may hand out a settled message again
 * (see the admit step of session-receiver.ts).
 */
export function settledPerRecord(record: SessionRecord, seq: number): boolean {
  return seq <= (record.deliveredThrough ?? 0) && record.counts[String(seq)] === undefined;
}

/**
 * Takes back one delivery the current lock counted (recalled by an abandon, or voided
 * before it was handed out). Only what `held` still shows is taken back, so a delivery a
 * close already took back is not taken back twice.
 */
export function takeBackCount(record: SessionRecord, seq: number): void {
  const key = String(seq);
  const held = heldOf(record);
  if (!held[key]) return;
  decrement(held, key);
  record.counts[key] = Math.max(0, (record.counts[key] ?? 0) - 1);
}

/** An abandon: the delivery stays counted (+1), also after a close. */
export function keepCount(record: SessionRecord, seq: number): void {
  delete heldOf(record)[String(seq)];
}

/** Drops the counts of settled messages. */
export function dropSettled(record: SessionRecord, settled: readonly number[]): void {
  const held = heldOf(record);
  for (const seq of settled) {
    delete record.counts[String(seq)];
    delete held[String(seq)];
  }
}

/** A close: every delivery the lock counted and nothing made final is taken back. */
export function takeBackHeld(record: SessionRecord): void {
  for (const [key, n] of Object.entries(heldOf(record))) {
    record.counts[key] = Math.max(0, (record.counts[key] ?? 0) - n);
  }
  record.held = {};
}

/**
 * A new lock over an expired one: what the old holder had in flight stays counted (+1,
 * as after a lock expiry), and the new lock starts with nothing held.
 */
export function startLock(record: SessionRecord): void {
  record.held = {};
}

function heldOf(record: SessionRecord): Record<string, number> {
  record.held ??= {};
  return record.held;
}

/** Lowers a `held` entry, removing it at 0 (`counts` keep theirs: see settledPerRecord). */
function decrement(counts: Record<string, number>, key: string): void {
  const count = (counts[key] ?? 0) - 1;
  if (count > 0) counts[key] = count;
  else delete counts[key];
}
