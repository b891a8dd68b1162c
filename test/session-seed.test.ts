/**
 * The session scenarios of the Service Bus seed documents, through the gRPC API: messages
 * of several sessions sent interleaved, receivers that each take the next available session
 * and process it to the end, one holder per session at a time, each session in order; a
 * session nobody accepts delivers nothing; and a slow holder keeps its session's order.
 */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import {
  bodyText,
  failure,
  millis,
  type ReceivedMessage,
  seconds,
  uniqueName,
  within,
} from "./support/grpc-client.js";
import { type SessionTestBroker, startSessionBroker } from "./support/session-broker.js";
import type { SessionClient, SessionLock, SessionRef } from "./support/session-client.js";

const COLOURS = ["Orange", "Green", "Blue", "Purple"];
const PER_SESSION = 4;
/** How long accept-next waits before a receiver decides there is no more work. */
const ACCEPT_WAIT_MS = 2_000;
/** A receiver treats its session as finished when no message comes for this long. */
const SESSION_IDLE_MS = 1_000;

let running: SessionTestBroker;
let client: SessionClient;
const streams = brokerPerFile(startSessionBroker, (started) => {
  running = started;
  client = started.client;
});

const refOf = ({ sessionId, lockToken }: SessionRef): SessionRef => ({ sessionId, lockToken });

/** Messages "<colour> <n>" for n = 1..count of each colour, interleaved round-robin. */
function interleaved(colours: string[], count: number): { sessionId: string; body: Buffer }[] {
  const messages: { sessionId: string; body: Buffer }[] = [];
  for (let n = 1; n <= count; n++) {
    for (const colour of colours)
      messages.push({ sessionId: colour, body: Buffer.from(`${colour} ${n}`) });
  }
  return messages;
}

interface Completion {
  receiver: number;
  sessionId: string;
  body: string;
  sequenceNumber: string;
  deliveryCount: number;
}

/** When a receiver held a session: from the accept's answer to the close request. */
interface Holding {
  receiver: number;
  sessionId: string;
  from: number;
  to: number;
}

/**
 * A receiver as the seed describes it: accepts the next available session, receives and
 * completes its messages until the session has been idle for SESSION_IDLE_MS, closes it,
 * and starts over; stops when accept-next returns empty.
 */
async function sessionReceiver(
  receiver: number,
  on: SessionClient,
  queue: string,
  prefetch: number,
  completions: Completion[],
  holdings: Holding[],
): Promise<void> {
  for (;;) {
    const lock = await on.acceptSession(queue, undefined, ACCEPT_WAIT_MS);
    if (!lock) return;
    const from = Date.now();
    const stream = on.receiveStream({
      entityPath: queue,
      session: refOf(lock),
      prefetch,
      maxWait: millis(SESSION_IDLE_MS),
    });
    streams.push(stream);
    for (;;) {
      const event = await stream.event(30_000);
      if (event === undefined) break;
      if (event.kind !== "message") throw new Error("a recalled event without an abandon");
      const { message } = event;
      await on.complete(queue, lock, message.lockToken);
      completions.push(completionOf(receiver, message));
    }
    holdings.push({ receiver, sessionId: lock.sessionId, from, to: Date.now() });
    await on.closeSession(queue, lock);
  }
}

function completionOf(receiver: number, message: ReceivedMessage): Completion {
  return {
    receiver,
    sessionId: message.message?.sessionId ?? "(none)",
    body: bodyText(message),
    sequenceNumber: message.sequenceNumber,
    deliveryCount: message.deliveryCount,
  };
}

/** Fails when two holdings of one session overlap in time. */
function expectNoOverlap(holdings: Holding[]): void {
  const bySession = new Map<string, Holding[]>();
  for (const h of holdings) bySession.set(h.sessionId, [...(bySession.get(h.sessionId) ?? []), h]);
  for (const [sessionId, list] of bySession) {
    const sorted = [...list].sort((a, b) => a.from - b.from);
    for (let i = 1; i < sorted.length; i++) {
      const before = sorted[i - 1] as Holding;
      const after = sorted[i] as Holding;
      expect(after.from, `session ${sessionId} held twice at once`).toBeGreaterThanOrEqual(
        before.to,
      );
    }
  }
}

describe("sessions sent interleaved, three receivers taking the next available session", () => {
  it("processes every session in order, each by one receiver at a time, all 16 completed", async () => {
    const queue = uniqueName("seed-colours");
    await client.createSessionQueue(queue);
    const sent = await client.send(queue, interleaved(COLOURS, PER_SESSION));
    expect(sent).toHaveLength(COLOURS.length * PER_SESSION);

    const receivers = [1, 2, 3].map(() => running.newClient());
    const completions: Completion[] = [];
    const holdings: Holding[] = [];
    await within(
      Promise.all(
        receivers.map((on, i) => sessionReceiver(i + 1, on, queue, i + 1, completions, holdings)),
      ),
      45_000,
      "the three receivers to run out of sessions",
    );

    expect(completions).toHaveLength(16);
    expect(new Set(completions.map((c) => c.sequenceNumber)).size).toBe(16);
    for (const colour of COLOURS) {
      const ofSession = completions.filter((c) => c.sessionId === colour);
      expect(
        ofSession.map((c) => c.body),
        `order of ${colour}`,
      ).toEqual([1, 2, 3, 4].map((n) => `${colour} ${n}`));
      // One receiver processed the whole session (it was never handed over).
      expect(new Set(ofSession.map((c) => c.receiver)).size).toBe(1);
      expect(ofSession.every((c) => c.deliveryCount === 1)).toBe(true);
    }
    // Each session was held exactly once, and never by two receivers at once.
    expect(holdings.map((h) => h.sessionId).sort()).toEqual([...COLOURS].sort());
    expectNoOverlap(holdings);
    // Sessions are spread: all three receivers got work.
    expect(new Set(holdings.map((h) => h.receiver))).toEqual(new Set([1, 2, 3]));
    expect(await client.peek(queue)).toEqual([]);
  });
});

describe("a session nobody accepts", () => {
  it("delivers nothing: its messages wait, visible to Peek, until it is accepted", async () => {
    const queue = uniqueName("seed-cyan");
    await client.createSessionQueue(queue);
    const sent = await client.send(queue, interleaved([...COLOURS, "Cyan"], PER_SESSION));
    const cyanSequences = sent.filter((_, i) => i % 5 === 4).map((r) => r.sequenceNumber);

    // Three receivers, each accepting sessions by name: every session but Cyan.
    const receivers = [1, 2, 3].map(() => running.newClient());
    const completions: Completion[] = [];
    const processNamed = async (receiver: number, on: SessionClient, names: string[]) => {
      for (const name of names) {
        const lock: SessionLock = await on.acceptNamed(queue, name);
        const stream = on.receiveStream({
          entityPath: queue,
          session: refOf(lock),
          prefetch: 5,
          maxWait: seconds(1),
        });
        streams.push(stream);
        for (const event of await stream.rest(30_000)) {
          if (event.kind !== "message") throw new Error("unexpected recalled event");
          await on.complete(queue, lock, event.message.lockToken);
          completions.push(completionOf(receiver, event.message));
        }
        await on.closeSession(queue, lock);
      }
    };
    await Promise.all([
      processNamed(1, receivers[0] as SessionClient, ["Orange", "Green"]),
      processNamed(2, receivers[1] as SessionClient, ["Blue"]),
      processNamed(3, receivers[2] as SessionClient, ["Purple"]),
    ]);
    expect(completions).toHaveLength(16);
    expect(completions.filter((c) => c.sessionId === "Cyan")).toEqual([]);

    // Cyan's four messages are still there, untouched: Peek shows them (no lock needed).
    const cyanPeeked = await client.peek(queue, { sessionId: "Cyan" });
    expect(cyanPeeked.map((m) => m.sequenceNumber)).toEqual(cyanSequences);
    expect(cyanPeeked.map(bodyText)).toEqual([1, 2, 3, 4].map((n) => `Cyan ${n}`));
    expect(cyanPeeked.every((m) => m.state === "MESSAGE_STATE_ACTIVE")).toBe(true);
    expect((await client.peek(queue)).map((m) => m.sequenceNumber)).toEqual(cyanSequences);

    // Accepting it by name (accept-next would do too) delivers them, in order, first time.
    const next = await client.acceptSession(queue, undefined, 5_000);
    expect(next?.sessionId).toBe("Cyan");
    if (!next) return;
    const stream = client.receiveStream({ entityPath: queue, session: refOf(next), prefetch: 4 });
    streams.push(stream);
    const cyan = await stream.take(4);
    expect(cyan.map(bodyText)).toEqual([1, 2, 3, 4].map((n) => `Cyan ${n}`));
    expect(cyan.map((m) => m.deliveryCount)).toEqual([1, 1, 1, 1]);
    await client.complete(queue, next, ...cyan.map((m) => m.lockToken));
    stream.cancel();
    await client.closeSession(queue, next);
    expect(await client.peek(queue)).toEqual([]);
  });
});

describe("sequencing within a session", () => {
  it("keeps the order 1, 2, 3 when the holder is slow on message 1", async () => {
    const queue = uniqueName("seed-slow");
    await client.createSessionQueue(queue);
    await client.send(
      queue,
      [1, 2, 3].map((n) => ({ sessionId: "order-77", body: Buffer.from(`step ${n}`) })),
    );
    const slow = running.newClient();
    const fast = running.newClient();
    const processed: { receiver: string; body: string }[] = [];

    // The slow receiver takes the session and holds message 1 unsettled...
    const lock = await slow.acceptSession(queue, undefined, 5_000);
    expect(lock?.sessionId).toBe("order-77");
    if (!lock) return;
    const stream = slow.receiveStream({ entityPath: queue, session: refOf(lock), prefetch: 3 });
    streams.push(stream);
    const first = await stream.next();
    expect(bodyText(first)).toBe("step 1");

    // ...while the fast one, with nothing else to do, tries to get the session's messages:
    // accept-next finds no session, and accepting it by name is refused.
    const fastAttempt = async () => {
      const found = await fast.acceptSession(queue, undefined, ACCEPT_WAIT_MS);
      if (found) {
        processed.push({ receiver: "fast", body: `accepted ${found.sessionId}` });
        await fast.closeSession(queue, found);
      }
      return failure(fast.acceptSession(queue, "order-77"));
    };
    // The slow receiver finishes message 1 only after the fast one has tried everything:
    // "slow" is defined by that event, not by a guess of how long the other one needs.
    expect(await fastAttempt()).toMatchObject({
      code: grpc.status.ABORTED,
      reason: "SESSION_CANNOT_BE_LOCKED",
      sessionId: "order-77",
    });
    await slow.complete(queue, lock, first.lockToken);
    processed.push({ receiver: "slow", body: bodyText(first) });
    for (const message of await stream.take(2)) {
      await slow.complete(queue, lock, message.lockToken);
      processed.push({ receiver: "slow", body: bodyText(message) });
    }
    stream.cancel();
    await slow.closeSession(queue, lock);

    // Nothing is left for the fast receiver.
    expect(await fast.acceptSession(queue, undefined, ACCEPT_WAIT_MS)).toBeUndefined();
    expect(processed).toEqual([
      { receiver: "slow", body: "step 1" },
      { receiver: "slow", body: "step 2" },
      { receiver: "slow", body: "step 3" },
    ]);
  });
});
