/**
 * Settlement under a session lock (semantics §4): abandon keeps the order (the recalled
 * event, then the abandoned message again before anything after it), dead-lettering by the
 * receiver and by max_delivery_count, defer and ReceiveDeferred under the lock, and Peek of
 * one session without a lock.
 */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import {
  bodyText,
  failure,
  type ReceivedMessage,
  seconds,
  uniqueName,
} from "./support/grpc-client.js";
import { startSessionBroker } from "./support/session-broker.js";
import type {
  SessionClient,
  SessionLock,
  SessionReceiveStream,
  SessionRef,
} from "./support/session-client.js";

/** The recalled event follows the abandon at once; this bounds the wait for it. */
const RECALL_BOUND_MS = 5_000;

let client: SessionClient;
const streams = brokerPerFile(startSessionBroker, (started) => {
  client = started.client;
});

const refOf = ({ sessionId, lockToken }: SessionRef): SessionRef => ({ sessionId, lockToken });

/** A session queue holding `count` messages "<sessionId> 1".. of one session, accepted. */
async function acceptedSession(
  prefix: string,
  sessionId: string,
  count: number,
  properties: { maxDeliveryCount?: number } = {},
): Promise<{ queue: string; sequences: string[]; lock: SessionLock }> {
  const queue = uniqueName(prefix);
  await client.createSessionQueue(queue, properties);
  const sent = await client.send(
    queue,
    Array.from({ length: count }, (_, i) => ({
      sessionId,
      messageId: `${sessionId}-${i + 1}`,
      subject: "step",
      body: Buffer.from(`${sessionId} ${i + 1}`),
    })),
  );
  const lock = await client.acceptNamed(queue, sessionId);
  return { queue, sequences: sent.map((r) => r.sequenceNumber), lock };
}

function receiver(ref: SessionRef, entityPath: string, prefetch: number): SessionReceiveStream {
  const stream = client.receiveStream({ entityPath, session: refOf(ref), prefetch });
  streams.push(stream);
  return stream;
}

const numberOf = (m: ReceivedMessage) => Number(bodyText(m).split(" ").at(-1));

describe("abandon in a session with prefetch", () => {
  it("delivers the abandoned message next, after the recalled event; completes 1..10 in order", async () => {
    const { queue, sequences, lock } = await acceptedSession("ssettle-abandon", "s10", 10);
    const stream = receiver(lock, queue, 10);
    const first = await stream.take(10);
    expect(first.map((m) => m.sequenceNumber)).toEqual(sequences);
    expect(first.every((m) => m.deliveryCount === 1)).toBe(true);

    const completed: number[] = [];
    const [m1, m2, m3, ...later] = first as [
      ReceivedMessage,
      ReceivedMessage,
      ReceivedMessage,
      ...ReceivedMessage[],
    ];
    for (const m of [m1, m2]) {
      await client.complete(queue, lock, m.lockToken);
      completed.push(numberOf(m));
    }
    await client.abandon(queue, lock, m3.lockToken);

    // The client skips what it receives until the recalled event, which names the other
    // unsettled deliveries (4..10): they are void now.
    const { skipped, lockTokens } = await stream.untilRecalled(RECALL_BOUND_MS);
    expect(skipped).toEqual([]);
    expect(new Set(lockTokens)).toEqual(new Set(later.map((m) => m.lockToken)));

    // Message 3 comes next, counted twice; then 4..10 again, new tokens, counts unchanged.
    const again = await stream.take(8);
    expect(again.map(numberOf)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect(again.map((m) => m.deliveryCount)).toEqual([2, 1, 1, 1, 1, 1, 1, 1]);
    for (const m of again) expect(lockTokens).not.toContain(m.lockToken);

    // The voided tokens settle nothing.
    expect(await failure(client.complete(queue, lock, later[0]?.lockToken ?? ""))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "MESSAGE_LOCK_LOST",
    });

    for (const m of again) {
      await client.complete(queue, lock, m.lockToken);
      completed.push(numberOf(m));
    }
    expect(completed).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    stream.cancel();
    await client.closeSession(queue, lock);
    expect(await client.peek(queue)).toEqual([]);
  });

  it("announces the recall, with an empty list, when nothing else was in flight", async () => {
    const { queue, lock } = await acceptedSession("ssettle-recall-empty", "one", 2);
    const stream = receiver(lock, queue, 1);
    const first = await stream.next();
    expect([numberOf(first), first.deliveryCount]).toEqual([1, 1]);
    await client.abandon(queue, lock, first.lockToken);
    // Prefetch 1: nothing else was delivered, so nothing is voided; the event still
    // comes before the abandoned message, so a client that skips until it knows where to stop.
    const { skipped, lockTokens } = await stream.untilRecalled(RECALL_BOUND_MS);
    expect(skipped).toEqual([]);
    expect(lockTokens).toEqual([]);
    const again = await stream.next();
    expect([numberOf(again), again.deliveryCount]).toEqual([1, 2]);
    await client.complete(queue, lock, again.lockToken);
    const second = await stream.next();
    expect([numberOf(second), second.deliveryCount]).toEqual([2, 1]);
    await client.complete(queue, lock, second.lockToken);
    stream.cancel();
    await client.closeSession(queue, lock);
  });

  it("keeps the order for a client that settles as it goes and abandons twice", async () => {
    const { queue, lock } = await acceptedSession("ssettle-loop", "loop", 10);
    const stream = receiver(lock, queue, 10);
    const abandonAt = new Map([
      [3, 1],
      [7, 2],
    ]); // message -> how many times to abandon it
    const completed: { n: number; deliveryCount: number }[] = [];
    let skipping = false;
    while (completed.length < 10) {
      const event = await stream.event();
      if (event === undefined) throw new Error("the stream ended");
      if (event.kind === "recalled") {
        skipping = false;
        continue;
      }
      if (skipping) continue;
      const m = event.message;
      const n = numberOf(m);
      const left = abandonAt.get(n) ?? 0;
      if (left > 0) {
        abandonAt.set(n, left - 1);
        await client.abandon(queue, lock, m.lockToken);
        skipping = true;
        continue;
      }
      await client.complete(queue, lock, m.lockToken);
      completed.push({ n, deliveryCount: m.deliveryCount });
    }
    expect(completed.map((c) => c.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(completed.find((c) => c.n === 3)?.deliveryCount).toBe(2);
    expect(completed.find((c) => c.n === 7)?.deliveryCount).toBe(3);
    for (const c of completed.filter((c) => c.n !== 3 && c.n !== 7))
      expect(c.deliveryCount, `delivery_count of ${c.n}`).toBe(1);
    stream.cancel();
    await client.closeSession(queue, lock);
  });
});

describe("settling what is not there to settle", () => {
  it("refuses a second settle and a token of another session; nothing changes", async () => {
    const { queue, sequences, lock } = await acceptedSession("ssettle-twice", "mine", 2);
    await client.send(queue, [{ sessionId: "theirs", body: Buffer.from("theirs 1") }]);
    const stream = receiver(lock, queue, 2);
    const [m1, m2] = (await stream.take(2)) as [ReceivedMessage, ReceivedMessage];
    await client.complete(queue, lock, m1.lockToken);
    expect(await failure(client.complete(queue, lock, m1.lockToken))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "MESSAGE_ALREADY_SETTLED",
    });
    expect(await failure(client.abandon(queue, lock, m1.lockToken))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "MESSAGE_ALREADY_SETTLED",
    });

    // Message 2's token under another session's lock settles nothing.
    const theirs = await client.acceptNamed(queue, "theirs");
    expect(await failure(client.complete(queue, theirs, m2.lockToken))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "MESSAGE_LOCK_LOST",
    });
    // Nor does a batch with one bad token: the good one stays unsettled.
    expect(await failure(client.complete(queue, lock, m2.lockToken, m1.lockToken))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
    });
    const left = await client.peek(queue, { sessionId: "mine" });
    expect(left.map((m) => m.sequenceNumber)).toEqual([sequences[1]]);
    await client.complete(queue, lock, m2.lockToken);
    expect(await client.peek(queue, { sessionId: "mine" })).toEqual([]);
    stream.cancel();
    await client.closeSession(queue, lock);
    await client.closeSession(queue, theirs);
  });
});

describe("dead-lettering in a session", () => {
  it("moves messages to the dead-letter queue with their session id; the session continues", async () => {
    const { queue, lock } = await acceptedSession("ssettle-dlq", "dl", 4, {
      maxDeliveryCount: 2,
    });
    const stream = receiver(lock, queue, 1);

    const m1 = await stream.next();
    expect(numberOf(m1)).toBe(1);
    await client.complete(queue, lock, m1.lockToken);

    // 2: dead-lettered by the receiver.
    const m2 = await stream.next();
    expect(numberOf(m2)).toBe(2);
    await client.settle({
      entityPath: queue,
      session: refOf(lock),
      lockTokens: [m2.lockToken],
      disposition: "DISPOSITION_DEAD_LETTER",
      deadLetterReason: "BadStep",
      deadLetterDescription: "step 2 cannot be processed",
    });

    // 3: abandoned until its next delivery would exceed max_delivery_count (2).
    const m3 = await stream.next();
    expect([numberOf(m3), m3.deliveryCount]).toEqual([3, 1]);
    await client.abandon(queue, lock, m3.lockToken);
    expect((await stream.untilRecalled(RECALL_BOUND_MS)).skipped).toEqual([]);
    const m3again = await stream.next();
    expect([numberOf(m3again), m3again.deliveryCount]).toEqual([3, 2]);
    await client.abandon(queue, lock, m3again.lockToken);
    expect((await stream.untilRecalled(RECALL_BOUND_MS)).skipped).toEqual([]);

    // The session continues with 4.
    const m4 = await stream.next();
    expect([numberOf(m4), m4.deliveryCount]).toEqual([4, 1]);
    await client.complete(queue, lock, m4.lockToken);
    stream.cancel();
    await client.closeSession(queue, lock);
    expect(await client.peek(queue)).toEqual([]);

    // Both are in the dead-letter queue, keeping their session id and properties...
    const dlqPath = `${queue}/$deadletterqueue`;
    const peeked = await client.peek(dlqPath);
    expect(peeked.map((m) => m.message?.sessionId)).toEqual(["dl", "dl"]);
    expect(peeked.map(bodyText)).toEqual(["dl 2", "dl 3"]);

    // ...and received there without a session.
    const dlq = client.receiveStream({ entityPath: dlqPath, prefetch: 2 });
    streams.push(dlq);
    const dead = await dlq.take(2);
    expect(dead.map((m) => [bodyText(m), m.deadLetterReason, m.deadLetterSource])).toEqual([
      ["dl 2", "BadStep", queue],
      ["dl 3", "MaxDeliveryCountExceeded", queue],
    ]);
    expect(dead[0]?.deadLetterDescription).toBe("step 2 cannot be processed");
    for (const m of dead) {
      expect(m.message).toMatchObject({ sessionId: "dl", subject: "step" });
      expect(m.lockToken).not.toBe("");
    }
    expect(dead.map((m) => m.message?.messageId)).toEqual(["dl-2", "dl-3"]);
    await client.complete(dlqPath, undefined, ...dead.map((m) => m.lockToken));
    dlq.cancel();
    expect(await client.peek(dlqPath)).toEqual([]);
  });
});

describe("defer in a session", () => {
  it("sets a message aside; ReceiveDeferred under the session lock fetches it to complete", async () => {
    const { queue, sequences, lock } = await acceptedSession("ssettle-defer", "df", 3);
    const stream = receiver(lock, queue, 1);
    const m1 = await stream.next();
    await client.defer(queue, lock, m1.lockToken);
    // Later messages continue.
    const m2 = await stream.next();
    expect(numberOf(m2)).toBe(2);
    await client.complete(queue, lock, m2.lockToken);
    const m3 = await stream.next();
    expect(numberOf(m3)).toBe(3);
    await client.complete(queue, lock, m3.lockToken);

    // Peek (of the session, no lock) shows it deferred.
    const peeked = await client.peek(queue, { sessionId: "df" });
    expect(peeked.map((m) => [m.sequenceNumber, m.state])).toEqual([
      [sequences[0], "MESSAGE_STATE_DEFERRED"],
    ]);

    // Without the session lock on a session queue: refused.
    expect(await failure(client.receiveDeferred(queue, [sequences[0] as string]))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "SESSION_REQUIRED",
    });
    // Under another session's lock it is not found.
    const stranger = await client.acceptNamed(queue, "stranger");
    expect(
      await failure(client.receiveDeferred(queue, [sequences[0] as string], stranger)),
    ).toMatchObject({ code: grpc.status.NOT_FOUND, reason: "MESSAGE_NOT_FOUND" });
    await client.closeSession(queue, stranger);

    const [fetched] = await client.receiveDeferred(queue, [sequences[0] as string], refOf(lock));
    expect(fetched).toMatchObject({
      sequenceNumber: sequences[0],
      state: "MESSAGE_STATE_DEFERRED",
      deliveryCount: 2,
    });
    if (fetched === undefined) throw new Error("nothing fetched");
    expect(bodyText(fetched)).toBe("df 1");
    expect(fetched.message?.sessionId).toBe("df");
    await client.complete(queue, lock, fetched.lockToken);
    stream.cancel();
    await client.closeSession(queue, lock);
    expect(await client.peek(queue)).toEqual([]);
  });
});

describe("Peek in a session queue", () => {
  it("shows one session's messages by session_id without a lock, all of them entity-wide", async () => {
    const queue = uniqueName("ssettle-peek");
    await client.createSessionQueue(queue);
    const sessions = ["a", "b", "", "c"];
    const sent = await client.send(
      queue,
      [1, 2, 3].flatMap((n) =>
        sessions.map((s) => ({ sessionId: s, body: Buffer.from(`${s}:${n}`) })),
      ),
    );
    const sequencesOf = (s: string) =>
      sent.filter((_, i) => sessions[i % sessions.length] === s).map((r) => r.sequenceNumber);

    for (const s of sessions) {
      const peeked = await client.peek(queue, { sessionId: s });
      expect(
        peeked.map((m) => m.sequenceNumber),
        `session "${s}"`,
      ).toEqual(sequencesOf(s));
      expect(peeked.map((m) => m.message?.sessionId)).toEqual([s, s, s]);
      expect(peeked.map(bodyText)).toEqual([1, 2, 3].map((n) => `${s}:${n}`));
      for (const m of peeked) expect(m.lockToken).toBe("");
    }
    expect(await client.peek(queue, { sessionId: "nobody" })).toEqual([]);
    // From a sequence number on, and at most max_messages.
    const fromSecond = await client.peek(queue, { sessionId: "b", from: sequencesOf("b")[1] });
    expect(fromSecond.map((m) => m.sequenceNumber)).toEqual(sequencesOf("b").slice(1));
    const one = await client.peek(queue, { sessionId: "c", max: 1 });
    expect(one.map((m) => m.sequenceNumber)).toEqual(sequencesOf("c").slice(0, 1));

    const all = await client.peek(queue);
    expect(all.map((m) => m.sequenceNumber)).toEqual(sent.map((r) => r.sequenceNumber));

    // A locked session's messages, delivered and unsettled, are still shown by Peek.
    const lock = await client.acceptNamed(queue, "a");
    const stream = receiver(lock, queue, 3);
    await stream.take(3);
    const whileLocked = await client.peek(queue, { sessionId: "a" });
    expect(whileLocked.map((m) => m.sequenceNumber)).toEqual(sequencesOf("a"));
    expect(await client.peek(queue)).toHaveLength(sent.length);
    stream.cancel();
    await client.closeSession(queue, lock);
  });
});

describe("receive-and-delete in a session", () => {
  it("removes each message as it is delivered, in order", async () => {
    const { queue, lock } = await acceptedSession("ssettle-rad", "rad", 3);
    const stream = client.receiveStream({
      entityPath: queue,
      session: refOf(lock),
      receiveMode: "RECEIVE_MODE_RECEIVE_AND_DELETE",
      prefetch: 3,
      maxWait: seconds(1),
    });
    streams.push(stream);
    const events = await stream.rest();
    const messages = events.flatMap((e) => (e.kind === "message" ? [e.message] : []));
    expect(messages.map(numberOf)).toEqual([1, 2, 3]);
    expect(messages.map((m) => m.lockToken)).toEqual(["", "", ""]);
    expect(await client.peek(queue)).toEqual([]);
    await client.closeSession(queue, lock);
  });
});

describe("closing a session right after a completion", () => {
  it("leaves the next message's delivery count at 1, however close and receive interleave", async () => {
    // Each round: receive with prefetch 1, complete, close at once. The completion frees the
    // stream's credit, so its pull of the next message races the close.
    const rounds = 60;
    const { queue, lock: firstLock } = await acceptedSession("ssettle-close", "closing", rounds);
    let lock = firstLock;
    const seen: [number, number][] = [];
    for (let round = 1; round <= rounds; round++) {
      if (round > 1) lock = await client.acceptNamed(queue, "closing");
      const stream = receiver(lock, queue, 1);
      const m = await stream.next();
      seen.push([numberOf(m), m.deliveryCount]);
      await client.complete(queue, lock, m.lockToken);
      await client.closeSession(queue, lock);
      stream.cancel();
    }
    // Each message was delivered once and never settled twice: count 1 every time.
    expect(seen).toEqual(Array.from({ length: rounds }, (_, i) => [i + 1, 1]));
    expect(await client.peek(queue)).toEqual([]);
  }, 120_000);
});
