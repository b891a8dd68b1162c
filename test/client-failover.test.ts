/**
 * Broker failover in the TypeScript SDK: two broker processes on the test run's
 * nats-server, a client given both addresses, and the broker it uses killed with SIGKILL
 * under load. The client goes on through the other broker; what it held through the dead
 * one (message locks, session locks) is lost to it and comes back once the locks expire,
 * with the delivery count one higher (semantics §4), never to two holders at once.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import {
  createSessionBusClient,
  createSessionProcessor,
  type FailoverEvent,
  MessageLockLostError,
  type ProcessorSession,
  type SessionBusClient,
  SessionCannotBeLockedError,
  SessionLockLostError,
  type SessionProcessor,
  type SessionReceiver,
} from "../src/client/index.js";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { uniqueName, within } from "./support/grpc-client.js";
import { testConnectionString } from "./support/test-credentials.js";

const SESSIONS = 20;
const PER_SESSION = 20;
const TOTAL = SESSIONS * PER_SESSION;
/** Short, so that locks held through the dead broker expire within the test. */
const LOCK_MS = 5_000;
const CONCURRENT_SESSIONS = 8;
/** Bounds for a busy 2-core machine: a run takes a few seconds plus one lock duration. */
const PHASE_BOUND_MS = 120_000;

const brokers: BrokerProcess[] = [];
const clients: SessionBusClient[] = [];
const processors: SessionProcessor[] = [];
const queues: string[] = [];

afterEach(async () => {
  for (const processor of processors.splice(0)) await processor.close();
  // Through a broker that is still alive (the client moved there).
  const admin = clients[0];
  for (const queue of queues.splice(0)) await admin?.deleteQueue(queue).catch(() => undefined);
  for (const client of clients.splice(0)) await client.close();
  await Promise.all(brokers.splice(0).map((broker) => broker.stop()));
});

async function startTwoBrokers(): Promise<[BrokerProcess, BrokerProcess]> {
  const pair = await Promise.all([
    startBrokerProcess({ natsUrl: inject("natsUrl") }),
    startBrokerProcess({ natsUrl: inject("natsUrl") }),
  ]);
  brokers.push(...pair);
  return pair;
}

function client(options: Parameters<typeof createSessionBusClient>[0]): SessionBusClient {
  const created = createSessionBusClient(options);
  clients.push(created);
  return created;
}

async function kill(broker: BrokerProcess): Promise<number> {
  broker.kill("SIGKILL");
  const exit = await within(broker.exited, 10_000, "the killed broker to exit");
  expect(exit.signal).toBe("SIGKILL");
  return Date.now();
}

const sessionName = (i: number) => `s${String(i).padStart(2, "0")}`;

/** A promise with its resolve function. */
function later<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** One acceptance of a session by the processor, until its close (or its lock's end). */
interface Holding {
  session: ProcessorSession;
  sessionId: string;
  from: number;
  /** When sessionClosing ran; for a session lost with its broker, its lock's expiry. */
  to: number;
  closed: boolean;
}

interface Delivery {
  sessionId: string;
  index: number;
  sequenceNumber: bigint;
  deliveryCount: number;
  at: number;
  holding: Holding;
}

describe("broker failover of the TypeScript SDK", () => {
  it("a session processor completes 20 sessions × 20 messages across a SIGKILL of its broker: none lost, in order, one holder at a time, what it held counted once more after the lock", {
    timeout: 4 * PHASE_BOUND_MS,
  }, async () => {
    const [first, second] = await startTwoBrokers();
    const failovers: FailoverEvent[] = [];
    const sdk = client({
      connectionString: testConnectionString([first.url, second.url]),
      onFailover: (event) => failovers.push(event),
    });
    expect(sdk.urls).toEqual([first.url, second.url]);
    const queue = uniqueName("failover-sessions");
    await sdk.createQueue(queue, { requiresSession: true, lockDurationMs: LOCK_MS });
    queues.push(queue);
    const batch = [];
    for (let n = 1; n <= PER_SESSION; n++) {
      for (let s = 0; s < SESSIONS; s++) {
        batch.push({ sessionId: sessionName(s), body: `${sessionName(s)}:${n}` });
      }
    }
    await sdk.sender(queue).sendBatch(batch);
    expect(sdk.activeUrl).toBe(first.url);

    const holdings = new Map<ProcessorSession, Holding>();
    const deliveries: Delivery[] = [];
    /** Per session: the lowest index not completed yet (what must come next). */
    const nextIndex = new Map<string, number>();
    const violations: string[] = [];
    const completed = new Map<bigint, Delivery>();
    const errors: { error: unknown; source: string; sessionId: string | undefined }[] = [];
    let onProgress = () => {};
    let freezing = false;
    const frozen = new Map<Holding, Delivery>();
    const release = later();

    const processor = createSessionProcessor(
      sdk,
      queue,
      {
        sessionInitializing(session) {
          holdings.set(session, {
            session,
            sessionId: session.sessionId,
            from: Date.now(),
            to: Number.POSITIVE_INFINITY,
            closed: false,
          });
        },
        sessionClosing(session) {
          const holding = holdings.get(session);
          if (holding) {
            holding.to = Date.now();
            holding.closed = true;
          }
        },
        async processMessage(context) {
          const holding = holdings.get(context.session);
          if (!holding) throw new Error("a message outside an initialized session");
          const [sessionId, index] = String(Buffer.from(context.message.body)).split(":");
          const delivery: Delivery = {
            sessionId: sessionId ?? "",
            index: Number(index),
            sequenceNumber: context.message.sequenceNumber,
            deliveryCount: context.message.deliveryCount,
            at: Date.now(),
            holding,
          };
          deliveries.push(delivery);
          if (delivery.sessionId !== context.sessionId) {
            violations.push(`${context.sessionId} got a message of ${delivery.sessionId}`);
          }
          const expected = nextIndex.get(delivery.sessionId) ?? 1;
          if (delivery.index !== expected) {
            violations.push(`${delivery.sessionId}: got ${delivery.index}, expected ${expected}`);
          }
          if (freezing) {
            // Held unsettled until its broker is dead.
            frozen.set(holding, delivery);
            onProgress();
            await release.promise;
          }
          try {
            await context.complete();
          } catch (error) {
            errors.push({ error, source: "test:complete", sessionId: delivery.sessionId });
            return;
          }
          if (completed.has(delivery.sequenceNumber)) {
            violations.push(`${delivery.sequenceNumber} completed twice`);
          }
          completed.set(delivery.sequenceNumber, delivery);
          nextIndex.set(delivery.sessionId, delivery.index + 1);
          onProgress();
        },
        processError(error, info) {
          errors.push({ error, source: info.source, sessionId: info.sessionId });
        },
      },
      {
        maxConcurrentSessions: CONCURRENT_SESSIONS,
        sessionIdleTimeoutMs: 1_000,
      },
    );
    processors.push(processor);
    const until = (done: () => boolean) =>
      new Promise<void>((resolve) => {
        onProgress = () => {
          if (done()) resolve();
        };
        onProgress();
      });
    const open = () => [...holdings.values()].filter((h) => h.to === Number.POSITIVE_INFINITY);

    const started = Date.now();
    await processor.start();
    await within(
      until(() => completed.size >= TOTAL * 0.3),
      PHASE_BOUND_MS,
      "30% completed",
    );
    // Every held session's handler holds a message; no settlement is under way.
    freezing = true;
    await within(
      until(() => open().length > 0 && open().every((h) => frozen.has(h))),
      PHASE_BOUND_MS,
      "every held session to hold a message unsettled",
    );
    const completedAtKill = completed.size;
    const killedAt = await kill(first);
    freezing = false;
    release.resolve();

    await within(
      until(() => completed.size >= TOTAL),
      PHASE_BOUND_MS,
      "every message completed",
    );
    const finishedAt = Date.now();
    await processor.stop();

    // The client moved to the other broker once.
    expect(failovers.map(({ from, to }) => ({ from, to }))).toEqual([
      { from: first.url, to: second.url },
    ]);
    expect(sdk.activeUrl).toBe(second.url);

    // 0 lost, 0 order violations.
    expect(violations).toEqual([]);
    expect(completed.size).toBe(TOTAL);
    for (let s = 0; s < SESSIONS; s++) expect(nextIndex.get(sessionName(s))).toBe(PER_SESSION + 1);

    // The sessions lost with the broker are those it held at the kill (never closed: the
    // processor closes every other one, at the latest when it stops); every session
    // accepted through the second broker was closed normally. A lost session is held
    // until its lock expires: its lock's end, as the client last knew it (renewals
    // included), closes its holding.
    const all = [...holdings.values()];
    const lost = all.filter((h) => !h.closed);
    expect(lost.length).toBeGreaterThan(0);
    for (const h of lost) expect(h.from).toBeLessThanOrEqual(killedAt);
    for (const h of all.filter((h) => h.from > killedAt)) expect(h.closed).toBe(true);
    const heldAtKill = new Set(lost.map((h) => h.sessionId));
    expect(heldAtKill.size).toBe(lost.length);
    for (const h of lost) h.to = h.session.lockedUntil.getTime();
    // 0 intervals where two receivers held one session.
    const bySession = new Map<string, Holding[]>();
    for (const h of all) bySession.set(h.sessionId, [...(bySession.get(h.sessionId) ?? []), h]);
    for (const [sessionId, list] of bySession) {
      const sorted = [...list].sort((a, b) => a.from - b.from);
      for (let i = 1; i < sorted.length; i++) {
        const before = sorted[i - 1] as Holding;
        const after = sorted[i] as Holding;
        expect(
          after.from,
          `${sessionId} accepted again before it was released`,
        ).toBeGreaterThanOrEqual(before.to);
      }
    }

    // What was held through the dead broker came back after the lock, counted once more.
    expect(frozen.size).toBeGreaterThan(0);
    for (const [holding, held] of frozen) {
      expect(lost).toContain(holding);
      expect(held.deliveryCount).toBe(1);
      const again = deliveries.find(
        (d) => d.sequenceNumber === held.sequenceNumber && d.holding !== holding,
      );
      expect(again?.deliveryCount, `delivery count of ${held.sequenceNumber}`).toBe(2);
      expect(again?.at).toBeGreaterThanOrEqual(holding.to);
      expect(completed.get(held.sequenceNumber)?.holding).toBe(again?.holding);
    }
    // Sessions not held at the kill were delivered once; the held ones' read-ahead came
    // again too (count 2), nothing more.
    for (const d of completed.values()) {
      if (heldAtKill.has(d.sessionId)) expect([1, 2]).toContain(d.deliveryCount);
      else expect(d.deliveryCount, `${d.sessionId}:${d.index}`).toBe(1);
    }
    // The processor was told of each lost session (SessionLockLostError), and of nothing else.
    for (const { error, sessionId, source } of errors) {
      expect(error, `${source} of ${sessionId}: ${String(error)}`).toBeInstanceOf(
        SessionLockLostError,
      );
      expect(heldAtKill).toContain(sessionId);
      expect((error as Error).message).toContain(first.url);
    }
    for (const sessionId of heldAtKill) {
      expect(errors.some((e) => e.sessionId === sessionId)).toBe(true);
    }
    const firstAfterKill = Math.min(
      ...[...completed.values()].filter((d) => d.at > killedAt).map((d) => d.at),
    );
    console.info(
      `failover: ${completedAtKill} of ${TOTAL} completed when ${first.url} was killed, ` +
        `${heldAtKill.size} sessions held through it; first completion through ${second.url} ` +
        `${firstAfterKill - killedAt} ms after the kill; all done ${finishedAt - killedAt} ms ` +
        `after it (${finishedAt - started} ms in all)`,
    );
  });

  it("a receiver reopens its stream on the other broker, a session receiver reports its session lost, and calls go to the other broker", {
    timeout: 2 * PHASE_BOUND_MS,
  }, async () => {
    const [first, second] = await startTwoBrokers();
    const failovers: FailoverEvent[] = [];
    const sdk = client({
      url: [first.url, second.url],
      connectionString: testConnectionString(first.url),
      onFailover: (event) => failovers.push(event),
    });
    const plain = uniqueName("failover-plain");
    const sessions = uniqueName("failover-session");
    await sdk.createQueue(plain, { lockDurationMs: LOCK_MS });
    queues.push(plain);
    await sdk.createQueue(sessions, { requiresSession: true, lockDurationMs: LOCK_MS });
    queues.push(sessions);
    await sdk.sender(plain).sendBatch([{ body: "one" }, { body: "two" }]);
    await sdk.sender(sessions).send({ sessionId: "a", body: "a1" });

    const receiver = sdk.receiver(plain);
    const one = await receiver.receiveMessage({ maxWaitMs: 30_000 });
    expect(one?.deliveryCount).toBe(1);
    const session = await sdk.acceptSession(sessions, "a");
    const a1 = await session.receiveMessage({ maxWaitMs: 30_000 });
    expect(a1?.deliveryCount).toBe(1);
    const sessionLockedUntil = session.lockedUntil.getTime();
    if (!one || !a1) throw new Error("nothing received");

    await kill(first);

    // The session is lost to its receiver: nothing is renewed or released elsewhere. Its
    // lock stays in the store until it expires.
    await expect(session.renewLock()).rejects.toBeInstanceOf(SessionLockLostError);
    await expect(session.complete(a1)).rejects.toBeInstanceOf(SessionLockLostError);
    await session.close();
    const early = await sdk.acceptSession(sessions, "a").then(
      (taken) => taken,
      (error: unknown) => error,
    );
    // (Unless the machine was so slow that the lock ran out meanwhile.)
    if (Date.now() < sessionLockedUntil) expect(early).toBeInstanceOf(SessionCannotBeLockedError);

    // The message lock went with the broker; the receiver goes on through the other one.
    const lockLost = await receiver.complete(one).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(lockLost).toBeInstanceOf(MessageLockLostError);
    expect((lockLost as Error).message).toContain(first.url);
    const two = await receiver.receiveMessage({ maxWaitMs: 30_000 });
    expect(String(Buffer.from(two?.body ?? []))).toBe("two");
    if (two) await receiver.complete(two);
    const again = await receiver.receiveMessage({ maxWaitMs: 30_000 });
    expect(again?.sequenceNumber).toBe(one.sequenceNumber);
    expect(again?.deliveryCount).toBe(2);
    expect(Date.now()).toBeGreaterThanOrEqual(one.lockedUntil?.getTime() ?? 0);
    if (again) await receiver.complete(again);
    expect(sdk.activeUrl).toBe(second.url);

    // After its lock expired, the session comes back, its message counted once more.
    const next =
      early instanceof Error
        ? await within(
            sdk.acceptNextSession(sessions, { maxWaitMs: 30_000 }),
            60_000,
            "the session to come back",
          )
        : (early as SessionReceiver);
    expect(next?.sessionId).toBe("a");
    expect(Date.now()).toBeGreaterThanOrEqual(sessionLockedUntil);
    const a1again = await next?.receiveMessage({ maxWaitMs: 30_000 });
    expect(a1again?.deliveryCount).toBe(2);
    if (a1again) await next?.complete(a1again);
    await next?.close();

    // Unary calls go to the other broker; a client whose first address is down starts there,
    // and a Send that cannot have reached a broker is sent to the next one.
    expect((await sdk.getQueue(plain)).name).toBe(plain);
    expect(failovers.map((e) => e.to)).toEqual([second.url]);
    const late = client({ connectionString: testConnectionString([first.url, second.url]) });
    await late.sender(plain).send({ body: "after" });
    expect(late.activeUrl).toBe(second.url);
    const after = await receiver.receiveMessage({ maxWaitMs: 30_000 });
    expect(String(Buffer.from(after?.body ?? []))).toBe("after");
    if (after) await receiver.complete(after);
    await receiver.close();
  });
});
