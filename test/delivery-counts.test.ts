/**
 * The delivery counts of a session record (src/broker/sessions/delivery-counts.ts) and what
 * they say about settled messages. With replicas, a consumer may hand a settled message
 * out again; the broker then asks the stream's leader only about messages the record shows
 * settled, so the record must never show an unsettled one settled, whatever a lock did
 * with it: delivered, recalled, abandoned, closed, expired.
 */
import { describe, expect, it } from "vitest";
import {
  dropSettled,
  keepCount,
  raiseCount,
  settledPerRecord,
  startLock,
  takeBackCount,
  takeBackHeld,
} from "../src/broker/sessions/delivery-counts.js";
import { emptySessionRecord } from "../src/store/session-records.js";

describe("a session record's delivery counts", () => {
  it("show a message settled only once it was delivered and settled", () => {
    const record = emptySessionRecord();
    expect(settledPerRecord(record, 5)).toBe(false); // nothing delivered yet
    for (const seq of [5, 9, 12]) raiseCount(record, seq);
    expect([5, 9, 12].map((seq) => settledPerRecord(record, seq))).toEqual([false, false, false]);
    dropSettled(record, [5]);
    expect(settledPerRecord(record, 5)).toBe(true);
    expect(settledPerRecord(record, 9)).toBe(false);
    // A later message of the session, never delivered, is not settled.
    expect(settledPerRecord(record, 20)).toBe(false);
  });

  it("keep a message unsettled through a recall, an abandon, a close and a lock expiry", () => {
    const record = emptySessionRecord();
    for (const seq of [3, 4, 7, 8]) raiseCount(record, seq);
    takeBackCount(record, 4); // recalled by an abandon of 3, or voided before it went out
    keepCount(record, 3); // the abandoned one keeps its count
    expect(record.counts).toMatchObject({ "3": 1, "4": 0, "7": 1, "8": 1 });
    takeBackHeld(record); // a close
    expect(record.counts).toMatchObject({ "3": 1, "4": 0, "7": 0, "8": 0 });
    startLock(record); // the next holder
    expect([3, 4, 7, 8].map((seq) => settledPerRecord(record, seq))).toEqual([
      false,
      false,
      false,
      false,
    ]);
    // Delivered again: the counts go on from where they stood.
    expect([3, 4, 7].map((seq) => raiseCount(record, seq))).toEqual([2, 1, 1]);
    startLock(record); // that lock expired: its deliveries stay counted
    expect([3, 4, 7, 8].map((seq) => settledPerRecord(record, seq))).toEqual([
      false,
      false,
      false,
      false,
    ]);
    dropSettled(record, [3, 4, 7, 8]);
    expect([3, 4, 7, 8].map((seq) => settledPerRecord(record, seq))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(record.counts).toEqual({});
  });
});
