/**
 * The bench's check of per-session order and exactly-once completion (scenario 2 and the
 * RabbitMQ peer report what it finds as problems): it must pass a clean run and name each
 * kind of violation.
 */
import { describe, expect, it } from "vitest";
import { SessionOrderCheck, sequencedBody, sequenceOf } from "../bench/support/order-check.js";

const m = (session: number, sequence: number) => ({ session, sequence });

/** Delivers and completes `messages` in the given order. */
function deliverAndComplete(check: SessionOrderCheck, messages: [number, number][]): void {
  for (const [session, sequence] of messages) {
    check.delivered(m(session, sequence));
    check.completed(m(session, sequence));
  }
}

describe("bench order check", () => {
  it("carries the session and sequence in the 1 KiB body beside the send stamp", () => {
    const body = sequencedBody(1234.5, 7, 42);
    expect(body.length).toBe(1024);
    expect(new DataView(body.buffer).getFloat64(0)).toBe(1234.5);
    expect(sequenceOf(body)).toEqual(m(7, 42));
    expect(sequenceOf(new Uint8Array(4))).toBeUndefined();
  });

  it("passes sessions interleaved with each other, each in send order, each message once", () => {
    const check = new SessionOrderCheck(2, 3);
    deliverAndComplete(check, [
      [1, 0],
      [0, 0],
      [0, 1],
      [1, 1],
      [1, 2],
      [0, 2],
    ]);
    expect(check.violations()).toEqual([]);
    expect(check.completedOnce()).toBe(6);
  });

  it("reports a message delivered before an earlier one of its session", () => {
    const check = new SessionOrderCheck(1, 3, (session) => `t-${session}`);
    deliverAndComplete(check, [
      [0, 0],
      [0, 2],
      [0, 1],
    ]);
    expect(check.violations()).toEqual([
      "1 deliveries out of send order within their session (e.g. t-0 message 2 when 1 was due)",
      "1 deliveries of a message after a later one of its session (late or repeated) (e.g. t-0 message 1 after 2)",
    ]);
  });

  it("reports lost, duplicated and unknown messages", () => {
    const check = new SessionOrderCheck(2, 2);
    deliverAndComplete(check, [
      [0, 0],
      [0, 1],
      [1, 0],
    ]);
    check.completed(m(0, 1));
    check.delivered(m(5, 0));
    check.delivered(undefined);
    expect(check.completedOnce()).toBe(2);
    expect(check.violations()).toEqual([
      "1 messages never completed (e.g. #1 message 1)",
      "1 messages completed more than once (e.g. #0 message 1)",
      "2 deliveries whose body names no message that was sent (e.g. session 5 message 0; a short body)",
    ]);
  });
});
