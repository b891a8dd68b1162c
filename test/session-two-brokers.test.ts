/**
 * Two broker processes on one nats-server share the sessions of a queue (semantics §4:
 * locks live in JetStream, not in one process): 8 receivers, 4 on each broker, process 200
 * sessions of 50 messages. Every message is completed exactly once, each session in order,
 * never by two holders at once; and when one broker is killed (SIGKILL) mid-run, the other
 * takes over its sessions once their locks expire, with the messages that were in flight
 * counted once more.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, inject, it } from "vitest";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { bodyText, errorReason, seconds, toMs, uniqueName, within } from "./support/grpc-client.js";
import {
  SessionClient,
  type SessionLock,
  type SessionReceiveStream,
  type SessionRef,
} from "./support/session-client.js";

const SESSIONS = 200;
const PER_SESSION = 50;
const TOTAL = SESSIONS * PER_SESSION;
const RECEIVERS_PER_BROKER = 4;
const PREFETCH = 10;
/** Sends carry this many messages (at most 4,500 and 1 MiB per request). */
const SEND_BATCH = 500;
/** Accept-next wait of a receiver that still expects work. */
const ACCEPT_WAIT_MS = 3_000;
/** A held session with no message for this long is closed (a safety net: it never is). */
const SESSION_IDLE = seconds(10);
/** Bound of a whole run of the receivers: generous, it took 96 s on a loaded machine. */
const RUN_BOUND_MS = 240_000;

const brokers: BrokerProcess[] = [];
const clients: SessionClient[] = [];
const streams: SessionReceiveStream[] = [];

afterEach(async () => {
  for (const stream of streams.splice(0)) stream.cancel();
  // Remove the queues through a broker that is still alive.
  for (const client of clients) {
    try {
      await client.deleteCreatedQueues();
    } catch {
      // its broker was killed; the queue is deleted through another one below
    }
  }
  for (const client of clients.splice(0)) client.close();
  await Promise.all(brokers.splice(0).map((broker) => broker.stop()));
});

const refOf = ({ sessionId, lockToken }: SessionRef): SessionRef => ({ sessionId, lockToken });

async function startBrokers(count: number): Promise<BrokerProcess[]> {
  const started = await Promise.all(
    Array.from({ length: count }, () => startBrokerProcess({ natsUrl: inject("natsUrl") })),
  );
  brokers.push(...started);
  return started;
}

function clientOf(broker: BrokerProcess): SessionClient {
  const client = new SessionClient(broker.url);
  clients.push(client);
  return client;
}

const sessionName = (i: number) => `s${String(i).padStart(3, "0")}`;

/** Sends message n of every session before message n + 1 of any: sessions interleaved. */
async function sendAll(client: SessionClient, queue: string): Promise<void> {
  const all: { sessionId: string; body: Buffer }[] = [];
  for (let n = 1; n <= PER_SESSION; n++) {
    for (let s = 0; s < SESSIONS; s++) {
      all.push({ sessionId: sessionName(s), body: Buffer.from(`${sessionName(s)}:${n}`) });
    }
  }
  for (let from = 0; from < all.length; from += SEND_BATCH) {
    await client.send(queue, all.slice(from, from + SEND_BATCH));
  }
}

interface Completion {
  sessionId: string;
  index: number;
  sequenceNumber: string;
  deliveryCount: number;
  receiver: number;
}

/** A session held by a receiver: accept answered → close requested (or the lock's end). */
interface Holding {
  receiver: number;
  broker: number;
  sessionId: string;
  from: number;
  to: number;
  /** The latest locked_until the receiver was told (accept or renew). */
  lockedUntil: number;
  /** Held when its broker was killed. */
  died: boolean;
}

interface Receiver {
  id: number;
  broker: number;
  client: SessionClient;
}

/** What the receivers share: the logs, and the kill switch of the second test. */
class Run {
  readonly completions: Completion[] = [];
  readonly holdings: Holding[] = [];
  /** Per receiver of a broker about to be killed: the messages it holds unsettled. */
  readonly inFlightAtKill: { receiver: number; sequenceNumber: string; sessionId: string }[] = [];
  /** The broker whose receivers stop settling (they freeze); then it is killed. */
  freezing: number | undefined;
  dead: number | undefined;
  private readonly frozen = new Set<number>();
  private onFrozen: (() => void) | undefined;
  private onProgress: (() => void) | undefined;

  constructor(
    readonly queue: string,
    readonly lockRenewMs: number | undefined,
  ) {}

  get done(): boolean {
    return this.completions.length >= TOTAL;
  }

  completed(completion: Completion): void {
    this.completions.push(completion);
    this.onProgress?.();
  }

  /** Resolves once `count` completions are logged. */
  whenCompleted(count: number): Promise<void> {
    return new Promise((resolve) => {
      this.onProgress = () => {
        if (this.completions.length >= count) resolve();
      };
      this.onProgress();
    });
  }

  /** Resolves once every receiver of the freezing broker holds a message unsettled. */
  whenFrozen(receivers: number[]): Promise<void> {
    return new Promise((resolve) => {
      this.onFrozen = () => {
        if (receivers.every((r) => this.frozen.has(r))) resolve();
      };
      this.onFrozen();
    });
  }

  freeze(receiver: number): void {
    this.frozen.add(receiver);
    this.onFrozen?.();
  }
}

/**
 * A receiver: accepts the next available session, receives and completes its messages in
 * order up to the last one (PER_SESSION), closes it, and starts over until every message
 * of the run is completed. Renews the lock while it holds it when the run says so.
 */
async function runReceiver(run: Run, receiver: Receiver): Promise<void> {
  const { client } = receiver;
  const { queue } = run;
  const deadline = Date.now() + RUN_BOUND_MS;
  while (!run.done) {
    if (Date.now() > deadline) throw new Error(`receiver ${receiver.id} ran out of time`);
    let lock: SessionLock | undefined;
    try {
      lock = await client.acceptSession(queue, undefined, ACCEPT_WAIT_MS);
    } catch (error) {
      if (run.dead === receiver.broker) return;
      throw error;
    }
    if (!lock) continue;
    const holding: Holding = {
      receiver: receiver.id,
      broker: receiver.broker,
      sessionId: lock.sessionId,
      from: Date.now(),
      to: Number.POSITIVE_INFINITY,
      lockedUntil: toMs(lock.lockedUntil),
      died: false,
    };
    run.holdings.push(holding);
    const ref = refOf(lock);
    let renewing: NodeJS.Timeout | undefined;
    if (run.lockRenewMs !== undefined) {
      renewing = setInterval(() => {
        client.renewSessionLock(queue, ref).then(
          (until) => {
            holding.lockedUntil = Math.max(holding.lockedUntil, toMs(until));
          },
          () => undefined, // closed meanwhile, or the broker is gone
        );
      }, run.lockRenewMs);
    }
    try {
      const finished = await processSession(run, receiver, ref, holding);
      if (!finished) return; // frozen, then its broker died
      holding.to = Date.now();
      clearInterval(renewing);
      await client.closeSession(queue, ref);
    } finally {
      clearInterval(renewing);
    }
  }
}

/** Receives and completes until the session's last message; false when frozen. */
async function processSession(
  run: Run,
  receiver: Receiver,
  ref: SessionRef,
  holding: Holding,
): Promise<boolean> {
  const { client } = receiver;
  const stream = client.receiveStream({
    entityPath: run.queue,
    session: ref,
    prefetch: PREFETCH,
    maxWait: SESSION_IDLE,
  });
  streams.push(stream);
  try {
    for (;;) {
      const event = await stream.event(30_000);
      if (event === undefined) return true; // idle: let another holder try later
      if (event.kind !== "message") throw new Error("recalled event without an abandon");
      const { message } = event;
      if (run.freezing === receiver.broker) {
        // Hold this message unsettled until the broker dies under it.
        run.inFlightAtKill.push({
          receiver: receiver.id,
          sequenceNumber: message.sequenceNumber,
          sessionId: ref.sessionId,
        });
        holding.died = true;
        run.freeze(receiver.id);
        await stream.finalStatus(60_000);
        return false;
      }
      const [sessionId, index] = bodyText(message).split(":");
      expect(sessionId).toBe(ref.sessionId);
      await client.complete(run.queue, ref, message.lockToken);
      run.completed({
        sessionId: ref.sessionId,
        index: Number(index),
        sequenceNumber: message.sequenceNumber,
        deliveryCount: message.deliveryCount,
        receiver: receiver.id,
      });
      if (Number(index) === PER_SESSION) return true;
    }
  } catch (error) {
    if (run.dead === receiver.broker) {
      holding.died = true;
      return false;
    }
    throw error;
  } finally {
    stream.cancel();
  }
}

/** Every session completed 1..PER_SESSION in order, every message exactly once. */
function expectAllInOrder(run: Run): void {
  expect(run.completions).toHaveLength(TOTAL);
  expect(new Set(run.completions.map((c) => c.sequenceNumber)).size).toBe(TOTAL);
  const bySession = new Map<string, number[]>();
  for (const c of run.completions) {
    bySession.set(c.sessionId, [...(bySession.get(c.sessionId) ?? []), c.index]);
  }
  expect(bySession.size).toBe(SESSIONS);
  const expected = Array.from({ length: PER_SESSION }, (_, i) => i + 1);
  for (const [sessionId, indexes] of bySession) {
    expect(indexes, `completion order of ${sessionId}`).toEqual(expected);
  }
}

/** No session held by two receivers at once. */
function expectNoOverlap(holdings: Holding[]): void {
  const bySession = new Map<string, Holding[]>();
  for (const h of holdings) bySession.set(h.sessionId, [...(bySession.get(h.sessionId) ?? []), h]);
  for (const [sessionId, list] of bySession) {
    const sorted = [...list].sort((a, b) => a.from - b.from);
    for (let i = 1; i < sorted.length; i++) {
      const before = sorted[i - 1] as Holding;
      const after = sorted[i] as Holding;
      expect(
        after.from,
        `${sessionId}: receiver ${after.receiver} got it while receiver ${before.receiver} held it`,
      ).toBeGreaterThanOrEqual(before.to);
    }
  }
}

function receiversOn(brokerClients: SessionClient[][]): Receiver[] {
  let id = 0;
  return brokerClients.flatMap((list, broker) =>
    list.map((client) => ({ id: ++id, broker, client })),
  );
}

describe("two broker processes sharing a session queue", () => {
  it("completes 200 sessions × 50 messages exactly once, in order, one holder at a time", {
    timeout: RUN_BOUND_MS + 60_000,
  }, async () => {
    const pair = await startBrokers(2);
    const admin = clientOf(pair[0] as BrokerProcess);
    const queue = uniqueName("two-brokers");
    await admin.createSessionQueue(queue);
    const sendStart = Date.now();
    await sendAll(admin, queue);
    const sendMs = Date.now() - sendStart;

    const receivers = receiversOn(
      pair.map((broker) => Array.from({ length: RECEIVERS_PER_BROKER }, () => clientOf(broker))),
    );
    const run = new Run(queue, undefined);
    const runStart = Date.now();
    await within(
      Promise.all(receivers.map((r) => runReceiver(run, r))),
      RUN_BOUND_MS + 10_000,
      "the receivers",
    );
    const runMs = Date.now() - runStart;
    console.info(
      `two brokers: sent ${TOTAL} messages in ${sendMs} ms, received and completed them in ${runMs} ms`,
    );

    expectAllInOrder(run);
    for (const c of run.completions) expect(c.deliveryCount).toBe(1);
    expect(run.holdings.every((h) => h.to !== Number.POSITIVE_INFINITY)).toBe(true);
    expectNoOverlap(run.holdings);
    // Both brokers took part, and every session was processed by one holder.
    expect(new Set(run.holdings.map((h) => h.broker))).toEqual(new Set([0, 1]));
    expect(run.holdings).toHaveLength(SESSIONS);
    expect(await admin.peek(queue)).toEqual([]);
  });

  it("survives a SIGKILL of one broker: the other takes its sessions after lock expiry", {
    timeout: RUN_BOUND_MS + 60_000,
  }, async () => {
    const pair = await startBrokers(2);
    const [victim, survivor] = pair as [BrokerProcess, BrokerProcess];
    const admin = clientOf(survivor);
    const queue = uniqueName("two-brokers-kill");
    await admin.createSessionQueue(queue, { lockDuration: seconds(5) });
    await sendAll(admin, queue);

    const receivers = receiversOn(
      pair.map((broker) => Array.from({ length: RECEIVERS_PER_BROKER }, () => clientOf(broker))),
    );
    const victimReceivers = receivers.filter((r) => r.broker === 0).map((r) => r.id);
    const run = new Run(queue, 1_500);
    const running = Promise.all(receivers.map((r) => runReceiver(run, r)));
    running.catch(() => undefined); // awaited below; a failure must not go unhandled before

    // Mid-run: the victim's receivers stop settling, each holding a message; then kill -9.
    await within(run.whenCompleted(TOTAL * 0.3), 60_000, "30% of the messages completed");
    run.freezing = 0;
    await within(run.whenFrozen(victimReceivers), 30_000, "the victim's receivers to freeze");
    run.dead = 0;
    const killedAt = Date.now();
    const killedAtCompletions = run.completions.length;
    victim.kill("SIGKILL");
    expect((await within(victim.exited, 10_000, "the killed broker to exit")).signal).toBe(
      "SIGKILL",
    );

    await within(running, RUN_BOUND_MS + 10_000, "the surviving receivers");

    expectAllInOrder(run);
    // The messages held unsettled at the kill came back, counted once more.
    expect(run.inFlightAtKill.length).toBeGreaterThanOrEqual(victimReceivers.length);
    const bySequence = new Map(run.completions.map((c) => [c.sequenceNumber, c]));
    for (const held of run.inFlightAtKill) {
      const completion = bySequence.get(held.sequenceNumber);
      expect(completion?.deliveryCount, `delivery_count of ${held.sequenceNumber}`).toBe(2);
      expect(victimReceivers).not.toContain(completion?.receiver);
    }
    // Sessions the victim never held were delivered once; the others at most twice.
    const touched = new Set(run.holdings.filter((h) => h.broker === 0).map((h) => h.sessionId));
    for (const c of run.completions) {
      if (touched.has(c.sessionId)) expect([1, 2]).toContain(c.deliveryCount);
      else expect(c.deliveryCount, `${c.sessionId}:${c.index}`).toBe(1);
    }
    // The sessions held at the kill were taken over by the survivor, not before their
    // locks ran out: a dead holding lasts until the last locked_until it was given.
    const died = run.holdings.filter((h) => h.died);
    expect(died.length).toBe(victimReceivers.length);
    for (const h of died) h.to = Math.max(h.lockedUntil, killedAt);
    expectNoOverlap(run.holdings);
    const takeoverAfterKill: number[] = [];
    for (const h of died) {
      const takeover = run.holdings.find(
        (later) => later.sessionId === h.sessionId && later.from > h.from,
      );
      expect(takeover?.broker, `takeover of ${h.sessionId}`).toBe(1);
      takeoverAfterKill.push((takeover?.from ?? 0) - killedAt);
    }
    console.info(
      `kill -9 after ${killedAtCompletions} of ${TOTAL} completions; ` +
        `${run.inFlightAtKill.length} messages held unsettled at the kill; ` +
        `its ${died.length} sessions taken over ${Math.min(...takeoverAfterKill)}-` +
        `${Math.max(...takeoverAfterKill)} ms after the kill; ` +
        `${run.completions.filter((c) => c.deliveryCount === 2).length} messages completed with delivery_count 2`,
    );
    expect(await admin.peek(queue)).toEqual([]);
    // The victim's clients see it gone.
    const gone = await admin.acceptSession(queue, undefined, 500);
    expect(gone).toBeUndefined();
    const victimClient = receivers.find((r) => r.broker === 0)?.client;
    const failed = await victimClient?.acceptSession(queue, undefined, 500).then(
      () => undefined,
      (error: unknown) => errorReason(error),
    );
    expect(failed?.code).toBe(grpc.status.UNAVAILABLE);
  });
});
