/**
 * Message expiry (semantics §4 "Expiry"): a message's TTL is capped by the entity default;
 * an expired message is never delivered, but dead-lettered with reason TTLExpiredException
 * when dead_lettering_on_message_expiration is on and dropped otherwise. In a session, any
 * expired message expires the whole session, evaluated when the session has a listener;
 * messages in flight under a lock wait until they are released.
 */
import { setTimeout as delay } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import {
  bodyText,
  type ReceivedMessage,
  seconds,
  toMs,
  uniqueName,
} from "./support/grpc-client.js";
import { startSessionBroker } from "./support/session-broker.js";
import type { SessionClient, SessionRef } from "./support/session-client.js";

let client: SessionClient;
const streams = brokerPerFile(startSessionBroker, (started) => {
  client = started.client;
});

const dlq = (queue: string) => `${queue}/$deadletterqueue`;
const refOf = ({ sessionId, lockToken }: SessionRef): SessionRef => ({ sessionId, lockToken });

/** Waits until wall-clock time is past `instantMs` (the behaviour under test is time). */
async function waitUntilPast(instantMs: number): Promise<void> {
  const left = instantMs - Date.now() + 1;
  if (left > 0) await delay(left);
}

/** Expiry is applied as the broker's consumer passes the message: this bounds the wait for it. */
const EXPIRY_BOUND_MS = 10_000;

/**
 * The dead-letter queue once it holds `count` messages. Expiry under a held lock happens
 * inside the broker with no event for the client, so this polls peek, bounded.
 */
async function deadLettered(queue: string, count: number): Promise<ReceivedMessage[]> {
  const deadline = Date.now() + EXPIRY_BOUND_MS;
  for (;;) {
    const found = await client.peek(dlq(queue));
    if (found.length >= count) return found;
    if (Date.now() > deadline) {
      throw new Error(`the dead-letter queue of ${queue} holds ${found.length}, not ${count}`);
    }
    await delay(50);
  }
}

/** The latest expires_at among `messages`: once it has passed, all of them have expired. */
function latestExpiry(messages: ReceivedMessage[]): number {
  return Math.max(...messages.filter((m) => m.expiresAt).map((m) => toMs(m.expiresAt)));
}

function receiver(queue: string, session: SessionRef | undefined, prefetch = 1) {
  const stream = client.receiveStream({
    entityPath: queue,
    session: session && refOf(session),
    prefetch,
  });
  streams.push(stream);
  return stream;
}

/** A session queue with session `sessionId` holding three messages, the second with a 1 s TTL. */
async function sessionOfThree(
  prefix: string,
  sessionId: string,
  deadLettering: boolean,
): Promise<{ queue: string; sequences: string[] }> {
  const queue = uniqueName(prefix);
  await client.createSessionQueue(queue, { deadLetteringOnMessageExpiration: deadLettering });
  const sent = await client.send(queue, [
    { sessionId, body: Buffer.from(`${sessionId} 1`) },
    { sessionId, body: Buffer.from(`${sessionId} 2`), timeToLive: seconds(1) },
    { sessionId, body: Buffer.from(`${sessionId} 3`) },
  ]);
  return { queue, sequences: sent.map((r) => r.sequenceNumber) };
}

describe("expiry in a session", () => {
  it("expires all three messages when the session is accepted after the TTL: dead-lettered with TTLExpiredException", async () => {
    const { queue, sequences } = await sessionOfThree("expiry-dl", "s-1", true);
    const peeked = await client.peek(queue, { sessionId: "s-1" });
    await waitUntilPast(latestExpiry(peeked));

    // Nobody listens yet: nothing is evaluated, peek still shows all three.
    expect((await client.peek(queue, { sessionId: "s-1" })).map((m) => m.sequenceNumber)).toEqual(
      sequences,
    );
    expect(await client.peek(dlq(queue))).toEqual([]);

    // A named accept evaluates expiry: all three go, and the accept still succeeds.
    const lock = await client.acceptNamed(queue, "s-1");
    expect(lock.sessionId).toBe("s-1");
    expect(await client.peek(queue, { sessionId: "s-1" })).toEqual([]);
    const dead = await client.peek(dlq(queue));
    expect(dead.map(bodyText)).toEqual(["s-1 1", "s-1 2", "s-1 3"]);
    for (const m of dead) {
      expect(m.deadLetterReason).toBe("TTLExpiredException");
      expect(m.message?.sessionId).toBe("s-1");
      expect(m.deadLetterSource).toBe(queue);
    }
    expect(dead[1]?.deadLetterDescription).toMatch(/time to live ran out/);
    expect(dead[0]?.deadLetterDescription).toMatch(/expire together/);

    // The emptied session is not listed and receives nothing until new messages arrive.
    expect((await client.listAllSessions(queue)).sessions).toEqual([]);
    await client.send(queue, [{ sessionId: "s-1", body: Buffer.from("s-1 4") }]);
    const stream = receiver(queue, lock);
    expect(bodyText(await stream.next())).toBe("s-1 4");
  });

  it("drops all three when dead-lettering on expiration is off", async () => {
    const { queue } = await sessionOfThree("expiry-drop", "s-2", false);
    await waitUntilPast(latestExpiry(await client.peek(queue, { sessionId: "s-2" })));
    expect(await client.peek(queue, { sessionId: "s-2" })).toHaveLength(3);

    await client.acceptNamed(queue, "s-2");
    expect(await client.peek(queue)).toEqual([]);
    expect(await client.peek(dlq(queue))).toEqual([]);
  });

  it("accept-next moves past a session that expiry empties, and does not offer it again", async () => {
    const { queue } = await sessionOfThree("expiry-next", "old", true);
    await waitUntilPast(latestExpiry(await client.peek(queue, { sessionId: "old" })));
    await client.send(queue, [{ sessionId: "fresh", body: Buffer.from("fresh 1") }]);

    const accepted = await client.acceptSession(queue, undefined, 5_000);
    expect(accepted?.sessionId).toBe("fresh");
    expect((await client.peek(dlq(queue))).map(bodyText)).toEqual(["old 1", "old 2", "old 3"]);
    expect(await client.acceptSession(queue, undefined, 1_000)).toBeUndefined();
  });

  it("never dead-letters a deferred message by expiry", async () => {
    const queue = uniqueName("expiry-deferred");
    await client.createSessionQueue(queue, { deadLetteringOnMessageExpiration: true });
    const lock = await client.acceptNamed(queue, "d");
    const stream = receiver(queue, lock);
    const [deferredOne] = await client.send(queue, [
      { sessionId: "d", body: Buffer.from("d 1"), timeToLive: seconds(2) },
    ]);
    const first = await stream.next();
    await client.defer(queue, refOf(lock), first.lockToken);
    await client.send(queue, [
      { sessionId: "d", body: Buffer.from("d 2"), timeToLive: seconds(1) },
    ]);
    const second = await stream.next();
    await waitUntilPast(latestExpiry([first, second]));

    // Abandoned after its TTL: it expires as it comes again; the deferred one stays.
    await client.abandon(queue, refOf(lock), second.lockToken);
    expect((await stream.untilRecalled()).skipped).toEqual([]);
    expect((await deadLettered(queue, 1)).map(bodyText)).toEqual(["d 2"]);
    await client.send(queue, [{ sessionId: "d", body: Buffer.from("d 3") }]);
    expect(bodyText(await stream.next())).toBe("d 3");
    const [fetched] = await client.receiveDeferred(
      queue,
      [deferredOne?.sequenceNumber ?? ""],
      refOf(lock),
    );
    expect(fetched && bodyText(fetched)).toBe("d 1");
  });
});

describe("a message locked in flight past its TTL", () => {
  it("is not expired while locked: completing it after the TTL succeeds", async () => {
    const { queue, sequences } = await sessionOfThree("expiry-locked", "s-3", true);
    const lock = await client.acceptNamed(queue, "s-3");
    const stream = receiver(queue, lock, 3);
    const held = await stream.take(3);
    expect(held.map((m) => m.sequenceNumber)).toEqual(sequences);
    await waitUntilPast(latestExpiry(held));

    await client.complete(queue, refOf(lock), ...held.map((m) => m.lockToken));
    expect(await client.peek(queue)).toEqual([]);
    expect(await client.peek(dlq(queue))).toEqual([]);
  });

  it("expires with its session once released: closed, then the next accept expires all", async () => {
    const { queue } = await sessionOfThree("expiry-released", "s-4", true);
    const lock = await client.acceptNamed(queue, "s-4");
    const stream = receiver(queue, lock, 3);
    const held = await stream.take(3);
    await waitUntilPast(latestExpiry(held));
    stream.cancel();
    await client.closeSession(queue, refOf(lock));
    // Released, but nobody listens: still there.
    expect(await client.peek(queue, { sessionId: "s-4" })).toHaveLength(3);

    await client.acceptNamed(queue, "s-4");
    expect(await client.peek(queue)).toEqual([]);
    const dead = await client.peek(dlq(queue));
    expect(dead.map(bodyText)).toEqual(["s-4 1", "s-4 2", "s-4 3"]);
    expect(dead.every((m) => m.deadLetterReason === "TTLExpiredException")).toBe(true);
  });

  it("expires with the session's undelivered messages once abandoned under the lock", async () => {
    const { queue } = await sessionOfThree("expiry-abandoned", "s-5", true);
    const lock = await client.acceptNamed(queue, "s-5");
    // Prefetch 1: message 1 is completed at once, message 2 (1 s TTL) is held, 3 waits.
    const stream = receiver(queue, lock, 1);
    const first = await stream.next();
    await client.complete(queue, refOf(lock), first.lockToken);
    const second = await stream.next();
    expect(bodyText(second)).toBe("s-5 2");
    await waitUntilPast(toMs(second.expiresAt));

    await client.abandon(queue, refOf(lock), second.lockToken);
    expect((await stream.untilRecalled()).skipped).toEqual([]);
    // Message 2 expired by its TTL; message 3, undelivered, expires with it; a message sent
    // afterwards is the next one the holder gets.
    const dead = await deadLettered(queue, 2);
    expect(dead.map(bodyText)).toEqual(["s-5 2", "s-5 3"]);
    await client.send(queue, [{ sessionId: "s-5", body: Buffer.from("s-5 4") }]);
    expect(bodyText(await stream.next())).toBe("s-5 4");
    expect(dead.every((m) => m.deadLetterReason === "TTLExpiredException")).toBe(true);
  });
});

describe("expiry on a queue without sessions", () => {
  it("never delivers an expired message; the entity default caps a longer message TTL", async () => {
    const queue = uniqueName("expiry-plain");
    await client.createQueue(queue, {
      defaultMessageTtl: seconds(1),
      deadLetteringOnMessageExpiration: true,
    });
    await client.send(queue, [
      { messageId: "long", body: Buffer.from("long ttl"), timeToLive: seconds(3600) },
      { messageId: "none", body: Buffer.from("no ttl") },
    ]);
    const peeked = await client.peek(queue);
    for (const m of peeked) {
      expect(toMs(m.expiresAt) - toMs(m.enqueuedTime)).toBeLessThanOrEqual(1_000);
    }
    await waitUntilPast(latestExpiry(peeked));

    // A longer default from now on: the fresh message cannot expire while being received.
    await client.unary("AdminService", "UpdateQueue", {
      name: queue,
      properties: { defaultMessageTtl: seconds(3600) },
    });
    await client.send(queue, [{ messageId: "fresh", body: Buffer.from("fresh") }]);
    const stream = receiver(queue, undefined);
    const received = await stream.next();
    expect(bodyText(received)).toBe("fresh");
    await client.complete(queue, undefined, received.lockToken);

    const dead = await client.peek(dlq(queue));
    expect(dead.map((m) => m.message?.messageId)).toEqual(["long", "none"]);
    expect(dead.every((m) => m.deadLetterReason === "TTLExpiredException")).toBe(true);
  });

  it("drops an expired message when dead-lettering on expiration is off", async () => {
    const queue = uniqueName("expiry-plain-drop");
    await client.createQueue(queue);
    await client.send(queue, [
      { messageId: "short", body: Buffer.from("short"), timeToLive: seconds(1) },
      { messageId: "kept", body: Buffer.from("kept") },
    ]);
    await waitUntilPast(latestExpiry(await client.peek(queue)));
    const stream = receiver(queue, undefined);
    expect(bodyText(await stream.next())).toBe("kept");
    expect(await client.peek(dlq(queue))).toEqual([]);
  });

  it("leaves a message locked past its TTL with its holder; abandoned, it expires", async () => {
    const queue = uniqueName("expiry-plain-locked");
    await client.createQueue(queue, { deadLetteringOnMessageExpiration: true });
    await client.send(queue, [
      { messageId: "a", body: Buffer.from("a"), timeToLive: seconds(1) },
      { messageId: "b", body: Buffer.from("b"), timeToLive: seconds(1) },
    ]);
    const stream = receiver(queue, undefined, 2);
    const [a, b] = (await stream.take(2)) as [ReceivedMessage, ReceivedMessage];
    await waitUntilPast(latestExpiry([a, b]));

    await client.complete(queue, undefined, a.lockToken);
    await client.abandon(queue, undefined, b.lockToken);
    await client.send(queue, [{ messageId: "c", body: Buffer.from("c") }]);
    expect(bodyText(await stream.next())).toBe("c");
    expect((await client.peek(dlq(queue))).map((m) => m.message?.messageId)).toEqual(["b"]);
  });
});
