/**
 * Plain queues end to end over HTTP/2 through an independent grpc-js client: send in
 * batches, peek, receive with prefetch, complete, receive-and-delete and competing receivers.
 */
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import { startTestBroker } from "./support/grpc-broker.js";
import {
  bodyText,
  type MessageInput,
  millis,
  type ReceivedMessage,
  type ReceiveStream,
  type SessionbusClient,
  seconds,
  uniqueName,
} from "./support/grpc-client.js";

let client: SessionbusClient;
brokerPerFile(
  startTestBroker,
  (started) => {
    client = started.client;
  },
  { cleanUpAfterEachTest: false },
);

function messages(prefix: string, from: number, count: number): MessageInput[] {
  return Array.from({ length: count }, (_, i) => ({
    messageId: `${prefix}-${from + i}`,
    body: Buffer.from(`${prefix} body ${from + i}`),
  }));
}

function sequenceNumbers(received: ReceivedMessage[]): bigint[] {
  return received.map((m) => BigInt(m.sequenceNumber));
}

function expectStrictlyIncreasing(values: bigint[]): void {
  for (let i = 1; i < values.length; i++) {
    expect(values[i] as bigint).toBeGreaterThan(values[i - 1] as bigint);
  }
}

/**
 * Reads messages from `stream`, completing each, until `done(mine)` says so or the stream
 * ends. Returns the messages this receiver got.
 */
async function receiveAndComplete(
  stream: ReceiveStream,
  queue: string,
  done: (mine: ReceivedMessage[]) => boolean,
  timeoutMs = 30_000,
): Promise<ReceivedMessage[]> {
  const mine: ReceivedMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(mine)) {
    const message = await stream.next(Math.max(1, deadline - Date.now()));
    if (message === undefined) break;
    mine.push(message);
    await client.complete(queue, message.lockToken);
  }
  return mine;
}

describe("a queue end to end", () => {
  const queue = uniqueName("e2e");
  const sent = new Map<string, string>(); // sequence number -> body
  const sentInOrder: bigint[] = [];

  it("sends 100 messages in three batches; sequence numbers come back in order", async () => {
    const created = await client.createQueue(queue);
    expect(created.name).toBe(queue);

    for (const [from, count] of [
      [0, 34],
      [34, 33],
      [67, 33],
    ] as const) {
      const batch = messages(queue, from, count);
      const results = await client.send(queue, batch);
      expect(results).toHaveLength(count);
      results.forEach((result, i) => {
        expect(result.messageId).toBe(batch[i]?.messageId);
        expect(result.duplicate).toBe(false);
        sent.set(result.sequenceNumber, `${queue} body ${from + i}`);
        sentInOrder.push(BigInt(result.sequenceNumber));
      });
    }

    expect(sentInOrder).toHaveLength(100);
    expect(new Set(sentInOrder).size).toBe(100);
    expectStrictlyIncreasing(sentInOrder);
  });

  it("peeks all 100 in sequence order, in one call and page by page", async () => {
    const all = await client.peek(queue, 0, 250);
    expect(sequenceNumbers(all)).toEqual(sentInOrder);
    expect(all.map(bodyText)).toEqual(sentInOrder.map((s) => sent.get(s.toString())));
    for (const peeked of all) {
      expect(peeked.state).toBe("MESSAGE_STATE_ACTIVE");
      expect(peeked.lockToken).toBe("");
      expect(peeked.enqueuedTime).not.toBeNull();
    }

    const paged: ReceivedMessage[] = [];
    let from = 0n;
    for (;;) {
      const page = await client.peek(queue, from.toString(), 30);
      expect(page.length).toBeLessThanOrEqual(30);
      paged.push(...page);
      const last = page.at(-1);
      if (last === undefined || page.length < 30) break;
      from = BigInt(last.sequenceNumber) + 1n;
    }
    expect(sequenceNumbers(paged)).toEqual(sentInOrder);

    // From the middle on: only the messages at or after that sequence number.
    const middle = sentInOrder[50] as bigint;
    const tail = await client.peek(queue, middle.toString(), 250);
    expect(sequenceNumbers(tail)).toEqual(sentInOrder.slice(50));

    // Peeking locks nothing and removes nothing.
    expect(await client.peek(queue, 0, 250)).toHaveLength(100);
  });

  it("receives all 100 with prefetch 20 and completes them; bodies match", async () => {
    const stream = client.receiveStream({ entityPath: queue, prefetch: 20 });
    let received: ReceivedMessage[];
    try {
      received = await receiveAndComplete(stream, queue, (mine) => mine.length >= 100);
    } finally {
      stream.cancel();
    }
    expect(received).toHaveLength(100);
    expect(new Set(sequenceNumbers(received))).toEqual(new Set(sentInOrder));
    for (const message of received) {
      expect(bodyText(message)).toBe(sent.get(message.sequenceNumber));
      expect(message.deliveryCount).toBe(1);
      expect(message.state).toBe("MESSAGE_STATE_ACTIVE");
      expect(message.lockToken).not.toBe("");
      expect(message.lockedUntil).not.toBeNull();
    }
    // A single receiver of a plain queue gets the messages in the order they were sent.
    expect(sequenceNumbers(received)).toEqual(sentInOrder);
  });

  it("has nothing left: a receiver with max_wait 1 s gets no message and ends", async () => {
    const stream = client.receiveStream({ entityPath: queue, prefetch: 20, maxWait: seconds(1) });
    try {
      expect(await stream.rest(10_000)).toEqual([]);
      expect((await stream.finalStatus()).code).toBe(0);
    } finally {
      stream.cancel();
    }
    expect(await client.peek(queue, 0, 250)).toEqual([]);
  });
});

describe("short max_wait", () => {
  it("delivers what is there and ends with a max_wait below a second", async () => {
    const queue = uniqueName("e2e-short");
    await client.createQueue(queue);
    await client.send(queue, messages(queue, 0, 3));
    const stream = client.receiveStream({ entityPath: queue, prefetch: 1, maxWait: millis(300) });
    try {
      // Prefetch 1: each message needs the one before it settled, so each comes in its own
      // short pull.
      for (let i = 0; i < 3; i++) {
        const [message] = await stream.take(1);
        await client.complete(queue, message?.lockToken ?? "");
      }
      expect(await stream.rest(10_000)).toEqual([]);
      expect((await stream.finalStatus()).code).toBe(0);
    } finally {
      stream.cancel();
    }
    expect(await client.peek(queue, 0, 250)).toEqual([]);
  });
});

describe("receive-and-delete mode", () => {
  it("removes each message as it is delivered, without a lock", async () => {
    const queue = uniqueName("e2e-rad");
    await client.createQueue(queue);
    const results = await client.send(queue, messages(queue, 0, 5));

    const stream = client.receiveStream({
      entityPath: queue,
      receiveMode: "RECEIVE_MODE_RECEIVE_AND_DELETE",
      prefetch: 5,
      maxMessages: 5,
    });
    let received: ReceivedMessage[];
    try {
      received = await stream.rest(15_000);
    } finally {
      stream.cancel();
    }

    expect(sequenceNumbers(received)).toEqual(results.map((r) => BigInt(r.sequenceNumber)));
    expect(received.map(bodyText)).toEqual(
      Array.from({ length: 5 }, (_, i) => `${queue} body ${i}`),
    );
    for (const message of received) expect(message.lockToken).toBe("");
    expect(await client.peek(queue, 0, 250)).toEqual([]);

    // And nobody receives them again.
    const again = client.receiveStream({ entityPath: queue, maxWait: seconds(1) });
    try {
      expect(await again.rest(10_000)).toEqual([]);
    } finally {
      again.cancel();
    }
  });
});

describe("competing receivers", () => {
  it("split 200 messages into disjoint sets whose union is everything sent", async () => {
    const queue = uniqueName("e2e-compete");
    await client.createQueue(queue);
    const streams = [
      client.receiveStream({ entityPath: queue, prefetch: 10 }),
      client.receiveStream({ entityPath: queue, prefetch: 10 }),
    ];
    const got: ReceivedMessage[][] = [[], []];
    const total = () => got.reduce((sum, mine) => sum + mine.length, 0);
    const deadline = Date.now() + 45_000;

    const receive = async (stream: ReceiveStream, mine: ReceivedMessage[]) => {
      while (total() < 200) {
        let message: ReceivedMessage | undefined;
        try {
          message = await stream.next(Math.max(1, deadline - Date.now()));
        } catch (error) {
          if (total() >= 200) return; // cancelled because the other one got the last
          throw error;
        }
        if (message === undefined) return;
        mine.push(message);
        await client.complete(queue, message.lockToken);
      }
      for (const each of streams) each.cancel();
    };

    const sentSequences: string[] = [];
    try {
      const receiving = streams.map((stream, i) => receive(stream, got[i] as ReceivedMessage[]));
      for (let from = 0; from < 200; from += 50) {
        const results = await client.send(queue, messages(queue, from, 50));
        sentSequences.push(...results.map((r) => r.sequenceNumber));
      }
      await Promise.all(receiving);
    } finally {
      for (const stream of streams) stream.cancel();
    }

    const [a, b] = got.map((mine) => mine.map((m) => m.sequenceNumber)) as [string[], string[]];
    expect(new Set(a).size).toBe(a.length);
    expect(new Set(b).size).toBe(b.length);
    expect(a.filter((sequence) => b.includes(sequence))).toEqual([]);
    expect([...a, ...b].sort()).toEqual([...sentSequences].sort());
    // Both took part.
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    expect(await client.peek(queue, 0, 250)).toEqual([]);
  });
});
