/**
 * What happens to a delivered message after the receiver is done with it (or is not):
 * abandon, lock expiry, max delivery count, dead-lettering, lock renewal and deferral.
 */
import { setTimeout as delay } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import { startTestBroker } from "./support/grpc-broker.js";
import {
  bodyText,
  failure,
  millis,
  type QueuePropertiesInput,
  type ReceivedMessage,
  type ReceiveStream,
  type SessionbusClient,
  seconds,
  toMs,
  uniqueName,
} from "./support/grpc-client.js";

/** Lock expiry takes lock_duration (5 s) plus JetStream's redelivery; this bounds it. */
const REDELIVERY_BOUND_MS = 20_000;

let client: SessionbusClient;
const streams = brokerPerFile(startTestBroker, (started) => {
  client = started.client;
});

/** A new queue holding one message; returns its name and the message's sequence number. */
async function queueWithOne(
  prefix: string,
  properties?: QueuePropertiesInput,
): Promise<{ queue: string; sequence: string; body: string }> {
  const queue = uniqueName(prefix);
  await client.createQueue(queue, properties);
  const body = `${queue} payload`;
  const [result] = await client.send(queue, [
    { messageId: `${queue}-1`, body: Buffer.from(body), subject: "greeting" },
  ]);
  if (result === undefined) throw new Error("no send result");
  return { queue, sequence: result.sequenceNumber, body };
}

function receiver(entityPath: string, prefetch = 1): ReceiveStream {
  const stream = client.receiveStream({ entityPath, prefetch });
  streams.push(stream);
  return stream;
}

async function nextMessage(stream: ReceiveStream, timeoutMs?: number): Promise<ReceivedMessage> {
  const message = await stream.next(timeoutMs);
  if (message === undefined) throw new Error("the stream ended without a message");
  return message;
}

describe("abandon", () => {
  it("redelivers the message with delivery_count 2", async () => {
    const { queue, sequence, body } = await queueWithOne("redeliver-abandon");
    const stream = receiver(queue);

    const first = await nextMessage(stream);
    expect(first).toMatchObject({ sequenceNumber: sequence, deliveryCount: 1 });
    await client.abandon(queue, first.lockToken);

    const second = await nextMessage(stream);
    expect(second).toMatchObject({ sequenceNumber: sequence, deliveryCount: 2 });
    expect(bodyText(second)).toBe(body);
    expect(second.lockToken).not.toBe(first.lockToken);
    await client.complete(queue, second.lockToken);
    stream.cancel();
    expect(await client.peek(queue)).toEqual([]);
  });
});

describe("lock expiry", () => {
  it("redelivers a message whose lock ran out, with delivery_count 2", async () => {
    const { queue, sequence } = await queueWithOne("redeliver-expiry", {
      lockDuration: seconds(5),
    });
    const stream = receiver(queue);

    const first = await nextMessage(stream);
    expect(first.deliveryCount).toBe(1);
    const lockedFor = toMs(first.lockedUntil) - Date.now();
    expect(lockedFor).toBeGreaterThan(3_000);
    expect(lockedFor).toBeLessThanOrEqual(5_000);

    // Not settled: the same stream gets it again once the lock has expired.
    const second = await nextMessage(stream, REDELIVERY_BOUND_MS);
    expect(Date.now()).toBeGreaterThanOrEqual(toMs(first.lockedUntil));
    expect(second).toMatchObject({ sequenceNumber: sequence, deliveryCount: 2 });
    await client.complete(queue, second.lockToken);
    stream.cancel();
  });
});

describe("max_delivery_count", () => {
  it("moves a message abandoned max_delivery_count times to the dead-letter queue", async () => {
    const { queue, sequence, body } = await queueWithOne("redeliver-maxcount", {
      maxDeliveryCount: 3,
    });
    const stream = receiver(queue);
    for (const count of [1, 2, 3]) {
      const delivered = await nextMessage(stream);
      expect(delivered).toMatchObject({ sequenceNumber: sequence, deliveryCount: count });
      await client.abandon(queue, delivered.lockToken);
    }

    const dlqPath = `${queue}/$deadletterqueue`;
    const dlq = receiver(dlqPath);
    const dead = await nextMessage(dlq);
    expect(dead.deadLetterReason).toBe("MaxDeliveryCountExceeded");
    expect(dead.deadLetterSource).toBe(queue);
    expect(bodyText(dead)).toBe(body);
    expect(dead.message?.messageId).toBe(`${queue}-1`);
    expect(dead.message?.subject).toBe("greeting");
    expect(dead.lockToken).not.toBe("");

    // The queue itself has nothing more to deliver. The copy is stored before the original
    // is removed (a crash in between never loses the message), so the removal may land a
    // moment after the copy can be received.
    expect(await peekUntilEmpty(queue)).toEqual([]);
    await client.complete(dlqPath, dead.lockToken);
    expect(await client.peek(dlqPath)).toEqual([]);
    stream.cancel();
    dlq.cancel();
  });
});

/** Peeks until the queue is empty or 5 s have passed; returns the last peek. */
async function peekUntilEmpty(queue: string) {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const found = await client.peek(queue);
    if (found.length === 0 || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("dead-lettering", () => {
  it("keeps the reason, description and source on the dead-lettered message", async () => {
    const { queue, body } = await queueWithOne("redeliver-deadletter");
    const stream = receiver(queue);
    const delivered = await nextMessage(stream);
    await client.settle({
      entityPath: queue,
      lockTokens: [delivered.lockToken],
      disposition: "DISPOSITION_DEAD_LETTER",
      deadLetterReason: "BadOrder",
      deadLetterDescription: "the order has no lines",
    });
    expect(await client.peek(queue)).toEqual([]);

    const dlqPath = `${queue}/$deadletterqueue`;
    const [peeked] = await client.peek(dlqPath);
    expect(peeked).toMatchObject({
      deadLetterReason: "BadOrder",
      deadLetterDescription: "the order has no lines",
      deadLetterSource: queue,
    });

    const dlq = receiver(dlqPath);
    const dead = await nextMessage(dlq);
    expect(dead).toMatchObject({
      deadLetterReason: "BadOrder",
      deadLetterDescription: "the order has no lines",
      deadLetterSource: queue,
      deliveryCount: 1,
    });
    expect(bodyText(dead)).toBe(body);
    await client.complete(dlqPath, dead.lockToken);
    expect(await client.peek(dlqPath)).toEqual([]);
    stream.cancel();
    dlq.cancel();
  });
});

describe("RenewMessageLock", () => {
  it("moves locked_until forward and keeps the lock past its first expiry", async () => {
    const { queue, sequence } = await queueWithOne("redeliver-renew", {
      lockDuration: seconds(5),
    });
    const stream = receiver(queue);
    const delivered = await nextMessage(stream);
    const firstExpiry = toMs(delivered.lockedUntil);

    // Renew halfway through the lock (a wait on the clock, not on another event).
    await delay(2_500);
    const [renewed] = await client.renewMessageLock(queue, [delivered.lockToken]);
    const renewedUntil = toMs(renewed);
    expect(renewedUntil).toBeGreaterThan(firstExpiry + 1_000);
    expect(renewedUntil).toBeGreaterThan(Date.now() + 4_000);

    // Past the first expiry the lock still holds: another receiver, waiting until well
    // after it, gets nothing...
    const other = client.receiveStream({
      entityPath: queue,
      maxWait: millis(firstExpiry + 1_500 - Date.now()),
    });
    streams.push(other);
    expect(await other.rest(15_000)).toEqual([]);
    expect(Date.now()).toBeGreaterThan(firstExpiry);
    expect(Date.now()).toBeLessThan(renewedUntil);
    // ...and the first receiver's token still completes the message.
    await client.complete(queue, delivered.lockToken);
    expect(await client.peek(queue)).toEqual([]);
    stream.cancel();
    expect(sequence).toBe(delivered.sequenceNumber);
  });
});

describe("defer", () => {
  it("sets a message aside until ReceiveDeferred fetches it by sequence number", async () => {
    const { queue, sequence, body } = await queueWithOne("redeliver-defer");
    const stream = receiver(queue);
    const delivered = await nextMessage(stream);
    await client.defer(queue, delivered.lockToken);
    stream.cancel();

    // Not delivered again by ReceiveStream.
    const idle = client.receiveStream({ entityPath: queue, prefetch: 5, maxWait: seconds(2) });
    streams.push(idle);
    expect(await idle.rest(15_000)).toEqual([]);

    // Peek shows it, deferred.
    const peeked = await client.peek(queue, 0, 250);
    expect(peeked).toHaveLength(1);
    expect(peeked[0]).toMatchObject({ sequenceNumber: sequence, state: "MESSAGE_STATE_DEFERRED" });

    // ReceiveDeferred returns it locked, still deferred.
    const [fetched] = await client.receiveDeferred(queue, [sequence]);
    expect(fetched).toMatchObject({ sequenceNumber: sequence, state: "MESSAGE_STATE_DEFERRED" });
    if (fetched === undefined) throw new Error("nothing fetched");
    expect(bodyText(fetched)).toBe(body);
    expect(fetched.lockToken).not.toBe("");
    expect(toMs(fetched.lockedUntil)).toBeGreaterThan(Date.now());

    await client.complete(queue, fetched.lockToken);
    expect(await client.peek(queue, 0, 250)).toEqual([]);

    const gone = await failure(client.receiveDeferred(queue, [sequence]));
    expect(gone).toMatchObject({ code: grpc.status.NOT_FOUND, reason: "MESSAGE_NOT_FOUND" });
  });
});
