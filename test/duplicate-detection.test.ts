/**
 * Duplicate detection (semantics §3): with requires_duplicate_detection, a second message
 * with the same message_id inside duplicate_detection_window is accepted and dropped (the
 * send result says duplicate); once the window has passed it is stored again. Without
 * detection every message is stored. UpdateQueue changes the window of a live queue.
 *
 * The window tests wait for wall-clock time (the behaviour is about time): until the window
 * counted from the first send's answer has passed, plus a second for the store's purge timer.
 */
import { setTimeout as delay } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import { startTestBroker } from "./support/grpc-broker.js";
import {
  bodyText,
  type SendResult,
  type SessionbusClient,
  seconds,
  toMs,
  uniqueName,
} from "./support/grpc-client.js";

/** The smallest window semantics §1 allows. */
const MIN_WINDOW_MS = 20_000;
/** After the window: nats-server drops a message id from a timer at the window's end. */
const PURGE_SLACK_MS = 1_000;

let client: SessionbusClient;
// No afterEach clean-up: the window tests run concurrently. Closing deletes every queue.
brokerPerFile(
  startTestBroker,
  (started) => {
    client = started.client;
  },
  { cleanUpAfterEachTest: false },
);

async function sendOne(queue: string, messageId: string, body: string): Promise<SendResult> {
  const [result] = await client.send(queue, [{ messageId, body: Buffer.from(body) }]);
  if (!result) throw new Error("no send result");
  return result;
}

async function bodies(queue: string): Promise<string[]> {
  return (await client.peekAll(queue)).map(bodyText);
}

/** Waits until `instant` (ms since the epoch) has passed. */
async function until(instant: number): Promise<void> {
  const left = instant - Date.now();
  if (left > 0) await delay(left);
}

describe("duplicate detection", () => {
  it.concurrent(
    "stores one message for the same message_id inside the window, and again after it",
    async () => {
      const queue = uniqueName("dup-window");
      await client.createQueue(queue, {
        requiresDuplicateDetection: true,
        duplicateDetectionWindow: seconds(MIN_WINDOW_MS / 1000),
      });
      const first = await sendOne(queue, "order-1", "first");
      const windowEnds = Date.now() + MIN_WINDOW_MS;
      expect(first.duplicate).toBe(false);

      const second = await sendOne(queue, "order-1", "second");
      expect(second).toMatchObject({ duplicate: true, messageId: "order-1" });
      // The duplicate reports the sequence number of the message that was kept.
      expect(second.sequenceNumber).toBe(first.sequenceNumber);
      expect(await bodies(queue)).toEqual(["first"]);

      // Another id is not a duplicate.
      expect((await sendOne(queue, "order-2", "other")).duplicate).toBe(false);

      await until(windowEnds + PURGE_SLACK_MS);
      const third = await sendOne(queue, "order-1", "third");
      expect(third.duplicate).toBe(false);
      expect(BigInt(third.sequenceNumber)).toBeGreaterThan(BigInt(first.sequenceNumber));
      expect(await bodies(queue)).toEqual(["first", "other", "third"]);
    },
    MIN_WINDOW_MS + 20_000,
  );

  it.concurrent(
    "UpdateQueue shortening the window takes effect for ids already seen",
    async () => {
      const queue = uniqueName("dup-update");
      // The default window (10 min) would keep the id far beyond this test.
      await client.createQueue(queue, { requiresDuplicateDetection: true });
      const first = await sendOne(queue, "job-1", "first");
      const windowEnds = Date.now() + MIN_WINDOW_MS;
      expect(first.duplicate).toBe(false);

      const updated = await client.updateQueue(queue, {
        duplicateDetectionWindow: seconds(MIN_WINDOW_MS / 1000),
      });
      expect(toMs(updated.properties?.duplicateDetectionWindow)).toBe(MIN_WINDOW_MS);
      expect(updated.properties?.requiresDuplicateDetection).toBe(true);
      expect((await sendOne(queue, "job-1", "inside")).duplicate).toBe(true);

      await until(windowEnds + PURGE_SLACK_MS);
      expect((await sendOne(queue, "job-1", "after")).duplicate).toBe(false);
      expect(await bodies(queue)).toEqual(["first", "after"]);
    },
    MIN_WINDOW_MS + 20_000,
  );

  it("drops a repeated message_id within one batch, keeping the first", async () => {
    const queue = uniqueName("dup-batch");
    await client.createQueue(queue, { requiresDuplicateDetection: true });
    const results = await client.send(queue, [
      { messageId: "a", body: Buffer.from("a1") },
      { messageId: "b", body: Buffer.from("b1") },
      { messageId: "a", body: Buffer.from("a2") },
    ]);
    expect(results.map((r) => [r.messageId, r.duplicate])).toEqual([
      ["a", false],
      ["b", false],
      ["a", true],
    ]);
    expect(results[2]?.sequenceNumber).toBe(results[0]?.sequenceNumber);
    expect(await bodies(queue)).toEqual(["a1", "b1"]);
    // A later send of an id the batch stored is a duplicate too.
    expect((await sendOne(queue, "b", "b2")).duplicate).toBe(true);
    expect(await bodies(queue)).toEqual(["a1", "b1"]);
  });

  it("keeps detecting a message id after the message was received and completed", async () => {
    const queue = uniqueName("dup-consumed");
    await client.createQueue(queue, { requiresDuplicateDetection: true });
    await sendOne(queue, "once", "first");
    const stream = client.receiveStream({
      entityPath: queue,
      receiveMode: "RECEIVE_MODE_RECEIVE_AND_DELETE",
    });
    try {
      const received = await stream.next();
      expect(received && bodyText(received)).toBe("first");
    } finally {
      stream.cancel();
    }
    expect(await bodies(queue)).toEqual([]);
    expect((await sendOne(queue, "once", "again")).duplicate).toBe(true);
    expect(await bodies(queue)).toEqual([]);
  });

  it("stores every message when the queue does not detect duplicates", async () => {
    const queue = uniqueName("dup-off");
    await client.createQueue(queue);
    const first = await sendOne(queue, "same", "one");
    const second = await sendOne(queue, "same", "two");
    expect([first.duplicate, second.duplicate]).toEqual([false, false]);
    expect(second.sequenceNumber).not.toBe(first.sequenceNumber);
    const batch = await client.send(queue, [
      { messageId: "same", body: Buffer.from("three") },
      { messageId: "same", body: Buffer.from("four") },
    ]);
    expect(batch.map((r) => r.duplicate)).toEqual([false, false]);
    expect(await bodies(queue)).toEqual(["one", "two", "three", "four"]);
  });
});
