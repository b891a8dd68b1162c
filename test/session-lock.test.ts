/**
 * Session locks (semantics §4): accepting a named session or the next available one, the
 * lock held against other receivers (also through another broker process), renewal, expiry
 * without renewal, closing with unsettled messages, and the misuse errors.
 */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import {
  bodyText,
  failure,
  millis,
  seconds,
  toMs,
  uniqueName,
  within,
} from "./support/grpc-client.js";
import { startSessionBroker } from "./support/session-broker.js";
import type {
  SessionClient,
  SessionReceiveRequest,
  SessionReceiveStream,
  SessionRef,
} from "./support/session-client.js";

/** Lock expiry: lock_duration (5 s) plus the broker noticing it; this bounds it. */
const EXPIRY_BOUND_MS = 20_000;

let client: SessionClient;
/** A second connection to the same broker: "another receiver". */
let other: SessionClient;
const streams = brokerPerFile(startSessionBroker, (started) => {
  client = started.client;
  other = started.newClient();
});

function receiver(on: SessionClient, request: SessionReceiveRequest): SessionReceiveStream {
  const stream = on.receiveStream(request);
  streams.push(stream);
  return stream;
}

async function sessionQueue(prefix: string, lockSeconds?: number): Promise<string> {
  const queue = uniqueName(prefix);
  await client.createSessionQueue(
    queue,
    lockSeconds === undefined ? {} : { lockDuration: seconds(lockSeconds) },
  );
  return queue;
}

/** Sends `count` messages to one session; bodies "<sessionId> 1".."<sessionId> count". */
async function sendToSession(queue: string, sessionId: string, count: number): Promise<string[]> {
  const results = await client.send(
    queue,
    Array.from({ length: count }, (_, i) => ({
      sessionId,
      body: Buffer.from(`${sessionId} ${i + 1}`),
    })),
  );
  return results.map((r) => r.sequenceNumber);
}

const refOf = ({ sessionId, lockToken }: SessionRef): SessionRef => ({ sessionId, lockToken });

describe("AcceptSession of a named session", () => {
  it("locks a session that never existed, and one whose messages are all gone", async () => {
    const queue = await sessionQueue("slock-named");

    const before = Date.now();
    const unknown = await client.acceptNamed(queue, "never-seen");
    expect(unknown.sessionId).toBe("never-seen");
    expect(unknown.lockToken).not.toBe("");
    // locked_until is now + lock_duration (default 60 s).
    expect(toMs(unknown.lockedUntil)).toBeGreaterThanOrEqual(before + 59_000);
    expect(toMs(unknown.lockedUntil)).toBeLessThanOrEqual(Date.now() + 61_000);
    // Nothing to receive yet...
    const idle = receiver(client, {
      entityPath: queue,
      session: refOf(unknown),
      maxWait: seconds(1),
    });
    expect(await idle.rest()).toEqual([]);
    // ...until a message arrives for it: it goes to the holder.
    const stream = receiver(client, { entityPath: queue, session: refOf(unknown) });
    const [sequence] = await sendToSession(queue, "never-seen", 1);
    const arrived = await stream.next();
    expect(arrived).toMatchObject({ sequenceNumber: sequence, deliveryCount: 1 });
    expect(arrived.message?.sessionId).toBe("never-seen");
    await client.complete(queue, unknown, arrived.lockToken);
    stream.cancel();
    await client.closeSession(queue, unknown);

    // The session is empty now (all its messages completed): it can be accepted again.
    const empty = await other.acceptNamed(queue, "never-seen");
    expect(empty.lockToken).not.toBe(unknown.lockToken);
    const nothing = receiver(other, {
      entityPath: queue,
      session: refOf(empty),
      maxWait: seconds(1),
    });
    expect(await nothing.rest()).toEqual([]);
    await other.closeSession(queue, empty);

    // The empty string is a session id of its own.
    const blank = await client.acceptNamed(queue, "");
    expect(blank.sessionId).toBe("");
    await client.closeSession(queue, blank);
  });

  it("fails ABORTED SESSION_CANNOT_BE_LOCKED while another receiver holds the session", async () => {
    const queue = await sessionQueue("slock-held");
    await sendToSession(queue, "held", 2);
    const holder = await client.acceptNamed(queue, "held");

    const second = await failure(other.acceptSession(queue, "held"));
    expect(second).toMatchObject({
      code: grpc.status.ABORTED,
      reason: "SESSION_CANNOT_BE_LOCKED",
      sessionId: "held",
    });
    // Also through the holder's own connection: a second accept is refused.
    expect(await failure(client.acceptSession(queue, "held"))).toMatchObject({
      code: grpc.status.ABORTED,
      reason: "SESSION_CANNOT_BE_LOCKED",
    });
    // Other sessions are free.
    await other.closeSession(queue, await other.acceptNamed(queue, "not-held"));

    // Once the holder closes, the other receiver gets it.
    await client.closeSession(queue, holder);
    const next = await other.acceptNamed(queue, "held");
    await other.closeSession(queue, next);
  });

  it("fails SESSION_CANNOT_BE_LOCKED when the holder is on another broker process", async () => {
    const queue = await sessionQueue("slock-twobrokers");
    await sendToSession(queue, "shared", 1);
    const second = await startSessionBroker();
    try {
      const holder = await second.client.acceptNamed(queue, "shared");
      expect(await failure(client.acceptSession(queue, "shared"))).toMatchObject({
        code: grpc.status.ABORTED,
        reason: "SESSION_CANNOT_BE_LOCKED",
        sessionId: "shared",
      });
      // Accept-next through this broker does not hand it out either.
      expect(await client.acceptSession(queue, undefined, 1_000)).toBeUndefined();

      // And the other way round: held here, refused there.
      await second.client.closeSession(queue, holder);
      const here = await client.acceptNamed(queue, "shared");
      expect(await failure(second.client.acceptSession(queue, "shared"))).toMatchObject({
        code: grpc.status.ABORTED,
        reason: "SESSION_CANNOT_BE_LOCKED",
      });
      // A lock taken here is usable through the other broker (locks live in JetStream).
      const stream = receiver(second.client, { entityPath: queue, session: refOf(here) });
      const message = await stream.next();
      expect(bodyText(message)).toBe("shared 1");
      await second.client.complete(queue, here, message.lockToken);
      stream.cancel();
      await client.closeSession(queue, here);
    } finally {
      await second.close();
    }
  });
});

describe("AcceptSession of the next available session", () => {
  it("returns an empty result, not an error, when no session turns up within max_wait", async () => {
    const queue = await sessionQueue("slock-next-empty");
    const started = Date.now();
    const accepted = await client.acceptSession(queue, undefined, 2_000);
    const took = Date.now() - started;
    expect(accepted).toBeUndefined();
    expect(took).toBeGreaterThanOrEqual(1_900);
    expect(took).toBeLessThan(10_000);
  });

  it("keeps a max_wait under one second: an empty result after 300 ms, not after 1 s", async () => {
    const queue = await sessionQueue("slock-next-short");
    // A first call opens what the broker keeps per queue, so the measured one is a plain wait.
    expect(await client.acceptSession(queue, undefined, 300)).toBeUndefined();
    const started = performance.now();
    const accepted = await client.acceptSession(queue, undefined, 300);
    const took = performance.now() - started;
    expect(accepted).toBeUndefined();
    expect(took).toBeGreaterThanOrEqual(290);
    // The behaviour itself: nats.js's pulls wait at least 1 s, which this must not.
    expect(took).toBeLessThan(950);
  });

  it("wakes a waiting accept with the session of a message sent while it waits", async () => {
    const queue = await sessionQueue("slock-next-wake");
    let resolvedAt: number | undefined;
    const waiting = client.acceptSession(queue, undefined, 10_000).then((lock) => {
      resolvedAt = Date.now();
      return lock;
    });
    // Shows the queue has no session for a while, so the first accept is waiting by now
    // (an observed empty result, not a sleep).
    expect(await other.acceptSession(queue, undefined, 1_000)).toBeUndefined();
    expect(resolvedAt).toBeUndefined();

    const sentAt = Date.now();
    await sendToSession(queue, "late-arrival", 1);
    const lock = await within(waiting, 12_000, "the waiting accept");
    expect(lock?.sessionId).toBe("late-arrival");
    // Woken by the message, not by a polling interval or the end of max_wait.
    expect((resolvedAt ?? 0) - sentAt).toBeLessThan(2_000);
    if (lock) await client.closeSession(queue, lock);
  });

  it("hands out only sessions with a receivable message, and not held ones", async () => {
    const queue = await sessionQueue("slock-next-pick");
    await sendToSession(queue, "a", 1);
    await sendToSession(queue, "b", 1);
    const held = await client.acceptNamed(queue, "a");
    // An empty named session exists too, but has nothing to receive.
    const emptyLock = await client.acceptNamed(queue, "empty");
    await client.closeSession(queue, emptyLock);

    const next = await other.acceptSession(queue, undefined, 5_000);
    expect(next?.sessionId).toBe("b");
    expect(await other.acceptSession(queue, undefined, 1_000)).toBeUndefined();
    if (next) await other.closeSession(queue, next);
    await client.closeSession(queue, held);
  });
});

describe("RenewSessionLock", () => {
  it("moves locked_until forward and keeps the session past its first expiry", async () => {
    const queue = await sessionQueue("slock-renew", 5);
    const lock = await client.acceptNamed(queue, "renewed");
    const firstExpiry = toMs(lock.lockedUntil);
    expect(firstExpiry - Date.now()).toBeGreaterThan(3_000);
    expect(firstExpiry - Date.now()).toBeLessThanOrEqual(5_000);

    // The holder waits for messages for 2.5 s (the stream ends empty), then renews.
    const waiting = receiver(client, {
      entityPath: queue,
      session: refOf(lock),
      maxWait: millis(2_500),
    });
    expect(await waiting.rest()).toEqual([]);
    const renewed = toMs(await client.renewSessionLock(queue, lock));
    expect(renewed).toBeGreaterThan(firstExpiry + 1_000);
    expect(renewed).toBeGreaterThan(Date.now() + 4_000);

    // It waits again, until past the first expiry: the stream ends empty, not with a lost
    // lock, and the session is still the holder's.
    const past = receiver(client, {
      entityPath: queue,
      session: refOf(lock),
      maxWait: millis(firstExpiry + 500 - Date.now()),
    });
    expect(await past.rest()).toEqual([]);
    expect(Date.now()).toBeGreaterThan(firstExpiry);
    expect(await failure(other.acceptSession(queue, "renewed"))).toMatchObject({
      code: grpc.status.ABORTED,
      reason: "SESSION_CANNOT_BE_LOCKED",
    });
    // A message sent now goes to the holder, and its token still settles it.
    const stream = receiver(client, { entityPath: queue, session: refOf(lock) });
    await sendToSession(queue, "renewed", 1);
    const message = await stream.next();
    await client.complete(queue, lock, message.lockToken);
    expect(await client.getSessionState(queue, lock)).toBeUndefined();
    expect(Date.now()).toBeLessThan(renewed);
    stream.cancel();
    await client.closeSession(queue, lock);
  });
});

describe("a session lock that runs out", () => {
  it("fails every call with the old token SESSION_LOCK_LOST and returns the messages", async () => {
    const queue = await sessionQueue("slock-expiry", 5);
    const sequences = await sendToSession(queue, "expiring", 3);
    const lock = await client.acceptNamed(queue, "expiring");
    const ref = refOf(lock);

    // Prefetch above what is sent: the stream keeps pulling, so it sees the lock go.
    const stream = receiver(client, { entityPath: queue, session: ref, prefetch: 10 });
    const delivered = await stream.take(3);
    expect(delivered.map((m) => m.sequenceNumber)).toEqual(sequences);
    for (const m of delivered) expect(m.deliveryCount).toBe(1);
    await client.complete(queue, ref, (delivered[0] as { lockToken: string }).lockToken);
    // Messages 2 and 3 stay in flight, unsettled; the lock is not renewed.

    // The open stream ends with the lost lock (the observable of the expiry).
    const ended = await failure(stream.event(EXPIRY_BOUND_MS));
    expect(ended).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "SESSION_LOCK_LOST",
    });
    expect(Date.now()).toBeGreaterThanOrEqual(toMs(lock.lockedUntil));

    const lockLost = { code: grpc.status.FAILED_PRECONDITION, reason: "SESSION_LOCK_LOST" };
    const inFlight = delivered.slice(1).map((m) => m.lockToken);
    const checkOldToken = async (when: string) => {
      const fresh = receiver(client, { entityPath: queue, session: ref });
      expect(await failure(fresh.event()), `receive ${when}`).toMatchObject(lockLost);
      expect(
        await failure(client.complete(queue, ref, ...inFlight)),
        `settle ${when}`,
      ).toMatchObject(lockLost);
      expect(await failure(client.getSessionState(queue, ref)), `get state ${when}`).toMatchObject(
        lockLost,
      );
      expect(
        await failure(client.setSessionState(queue, ref, Buffer.from("x"))),
        `set state ${when}`,
      ).toMatchObject(lockLost);
      expect(await failure(client.renewSessionLock(queue, ref)), `renew ${when}`).toMatchObject(
        lockLost,
      );
      expect(await failure(client.closeSession(queue, ref)), `close ${when}`).toMatchObject(
        lockLost,
      );
    };
    await checkOldToken("after expiry");

    // Another receiver accepts the session; the messages in flight come back, counted again.
    const next = await other.acceptNamed(queue, "expiring");
    const again = receiver(other, { entityPath: queue, session: refOf(next), prefetch: 10 });
    const redelivered = await again.take(2);
    expect(redelivered.map((m) => [m.sequenceNumber, m.deliveryCount])).toEqual([
      [sequences[1], 2],
      [sequences[2], 2],
    ]);
    expect(redelivered.map(bodyText)).toEqual(["expiring 2", "expiring 3"]);

    // The old token still fails while the new holder has the session.
    await checkOldToken("after another receiver accepted");

    await other.complete(queue, next, ...redelivered.map((m) => m.lockToken));
    again.cancel();
    await other.closeSession(queue, next);
    expect(await client.peek(queue)).toEqual([]);
  });
});

describe("messages sent to a held session", () => {
  // Sends to a session held through this broker publish no accept-next entry of their own
  // when the session has one already: the session is still offered once the lock runs out
  // without a close (a holder that vanished), or when it is closed with messages left.
  async function receiveAll(on: SessionClient, queue: string, lock: SessionRef, count: number) {
    const stream = receiver(on, { entityPath: queue, session: refOf(lock), prefetch: 10 });
    const messages = await stream.take(count);
    await on.complete(queue, lock, ...messages.map((m) => m.lockToken));
    stream.cancel();
    return messages.map(bodyText);
  }

  /** Accept-next through the other connection, bounded by the lock's expiry: the session
   * must be `sessionId`, handed out no earlier than `lockedUntil`; returns its bodies. */
  async function nextAfterExpiry(
    queue: string,
    sessionId: string,
    lockedUntil: Parameters<typeof toMs>[0],
    count: number,
  ): Promise<string[]> {
    const next = await other.acceptSession(queue, undefined, EXPIRY_BOUND_MS);
    expect(next?.sessionId).toBe(sessionId);
    expect(Date.now()).toBeGreaterThanOrEqual(toMs(lockedUntil));
    const bodies = await receiveAll(other, queue, next as SessionRef, count);
    await other.closeSession(queue, next as SessionRef);
    return bodies;
  }

  it("offers a session held by name, with what was sent meanwhile, once its lock runs out", async () => {
    const queue = await sessionQueue("slock-vanish-named", 5);
    const lock = await client.acceptNamed(queue, "named");
    await sendToSession(queue, "named", 2);
    await sendToSession(queue, "named", 1);
    // Not renewed, not closed: accept-next gets the session once the lock has run out.
    expect(await nextAfterExpiry(queue, "named", lock.lockedUntil, 3)).toEqual([
      "named 1",
      "named 2",
      "named 1",
    ]);
  });

  it("offers a session taken by accept-next, with what was sent meanwhile, once its lock runs out", async () => {
    const queue = await sessionQueue("slock-vanish-next", 5);
    await sendToSession(queue, "taken", 1);
    const lock = await client.acceptSession(queue, undefined, 5_000);
    expect(lock?.sessionId).toBe("taken");
    await sendToSession(queue, "taken", 2);
    expect(await nextAfterExpiry(queue, "taken", lock?.lockedUntil, 3)).toEqual([
      "taken 1",
      "taken 1",
      "taken 2",
    ]);
  });

  it("offers a session closed with messages left, sent while it was held", async () => {
    const queue = await sessionQueue("slock-vanish-closed");
    await sendToSession(queue, "closed", 1);
    const lock = await client.acceptSession(queue, undefined, 5_000);
    await sendToSession(queue, "closed", 1);
    await client.closeSession(queue, lock as SessionRef);
    const next = await other.acceptSession(queue, undefined, 5_000);
    expect(next?.sessionId).toBe("closed");
    expect(await receiveAll(other, queue, next as SessionRef, 2)).toEqual(["closed 1", "closed 1"]);
    await other.closeSession(queue, next as SessionRef);
  });
});

describe("CloseSession", () => {
  it("hands unsettled messages to the next holder with their delivery count unchanged", async () => {
    const queue = await sessionQueue("slock-close");
    const sequences = await sendToSession(queue, "closed", 3);
    const first = await client.acceptNamed(queue, "closed");
    const stream = receiver(client, { entityPath: queue, session: refOf(first), prefetch: 3 });
    const delivered = await stream.take(3);
    expect(delivered.map((m) => m.deliveryCount)).toEqual([1, 1, 1]);
    await client.complete(queue, first, (delivered[0] as { lockToken: string }).lockToken);
    await client.closeSession(queue, first);
    // The stream of a closed session ends.
    await stream.finalStatus();

    // The old lock is gone.
    expect(
      await failure(
        client.complete(queue, first, (delivered[1] as { lockToken: string }).lockToken),
      ),
    ).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "SESSION_LOCK_LOST",
    });

    const next = await other.acceptSession(queue, undefined, 5_000);
    expect(next?.sessionId).toBe("closed");
    if (!next) return;
    const again = receiver(other, { entityPath: queue, session: refOf(next), prefetch: 3 });
    const handed = await again.take(2);
    expect(handed.map((m) => [m.sequenceNumber, m.deliveryCount])).toEqual([
      [sequences[1], 1],
      [sequences[2], 1],
    ]);
    await other.complete(queue, next, ...handed.map((m) => m.lockToken));
    again.cancel();
    await other.closeSession(queue, next);
    expect(await client.peek(queue)).toEqual([]);
  });
});

describe("misuse", () => {
  it("refuses a send without a session id to a session queue: SESSION_ID_REQUIRED", async () => {
    const queue = await sessionQueue("slock-noid");
    expect(await failure(client.send(queue, [{ body: Buffer.from("no session") }]))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "SESSION_ID_REQUIRED",
    });
    // Nothing was stored, also not from a batch where one message lacks it.
    expect(
      await failure(
        client.send(queue, [
          { sessionId: "ok", body: Buffer.from("1") },
          { body: Buffer.from("2") },
        ]),
      ),
    ).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, reason: "SESSION_ID_REQUIRED" });
    expect(await client.peek(queue)).toEqual([]);
  });

  it("refuses a ReceiveStream without a session on a session queue: SESSION_REQUIRED", async () => {
    const queue = await sessionQueue("slock-nosession");
    await sendToSession(queue, "s", 1);
    const stream = receiver(client, { entityPath: queue });
    expect(await failure(stream.event())).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "SESSION_REQUIRED",
    });
  });

  it("refuses AcceptSession on a queue without sessions: NOT_SESSION_ENTITY", async () => {
    const queue = uniqueName("slock-plain");
    await client.createQueue(queue);
    const notSession = { code: grpc.status.FAILED_PRECONDITION, reason: "NOT_SESSION_ENTITY" };
    expect(await failure(client.acceptSession(queue, "s"))).toMatchObject(notSession);
    expect(await failure(client.acceptSession(queue, undefined, 1_000))).toMatchObject(notSession);
  });
});
