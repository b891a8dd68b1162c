/**
 * The session processor of the client SDK (createSessionProcessor) against an in-process
 * broker: the Service Bus example of the seed, many sessions at once, a throwing handler,
 * automatic lock renewal, the idle timeout, named sessions and a clean stop. The tests run
 * concurrently, each on its own queue.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, it } from "vitest";
import type { RunningSessionbus } from "../src/app.js";
import {
  createSessionBusClient,
  createSessionProcessor,
  type ProcessErrorInfo,
  type SessionBusClient,
  SessionCannotBeLockedError,
  SessionLockLostError,
  type SessionProcessor,
  type SessionProcessorHandlers,
} from "../src/client/index.js";
import { startInProcessBroker } from "./support/grpc-broker.js";
import { testConnectionString } from "./support/test-credentials.js";

let broker: RunningSessionbus;
let client: SessionBusClient;
/** Another connection: "another receiver". */
let other: SessionBusClient;
const created: string[] = [];
const processors: SessionProcessor[] = [];

beforeAll(async () => {
  broker = await startInProcessBroker();
  client = createSessionBusClient({ connectionString: testConnectionString(broker.url) });
  other = createSessionBusClient({ connectionString: testConnectionString(broker.url) });
});

afterAll(async () => {
  for (const processor of processors) await processor.close();
  for (const name of created) await client?.deleteQueue(name).catch(() => undefined);
  await client?.close();
  await other?.close();
  await broker?.close();
});

async function sessionQueue(prefix: string, lockDurationMs?: number): Promise<string> {
  const name = `client-proc-${prefix}-${randomUUID().slice(0, 8)}`;
  await client.createQueue(name, { requiresSession: true, lockDurationMs });
  created.push(name);
  return name;
}

function processor(
  queue: string,
  handlers: SessionProcessorHandlers,
  options: Parameters<typeof createSessionProcessor>[3],
): SessionProcessor {
  const created = createSessionProcessor(client, queue, handlers, options);
  processors.push(created);
  return created;
}

/** A promise with its resolve function. */
function signal<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Fails after `ms` instead of hanging. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects processError calls. */
function errorLog(): {
  errors: { error: unknown; info: ProcessErrorInfo }[];
  processError(error: unknown, info: ProcessErrorInfo): void;
} {
  const errors: { error: unknown; info: ProcessErrorInfo }[] = [];
  return { errors, processError: (error, info) => void errors.push({ error, info }) };
}

async function lockedSessions(queue: string): Promise<string[]> {
  const locked: string[] = [];
  for await (const info of client.listSessions(queue)) if (info.locked) locked.push(info.sessionId);
  return locked;
}

describe.concurrent("session processor", () => {
  it("runs the seed's example: one session at a time, each session's messages in order", async ({
    expect,
  }) => {
    const queue = await sessionQueue("seed");
    const colours = ["Orange", "Green", "Blue", "Purple"];
    // Interleaved, as in the seed's picture: Orange 1, Green 1, ..., Purple 4.
    for (let i = 1; i <= 4; i++) {
      await client
        .sender(queue)
        .sendBatch(
          colours.map((c) => ({ sessionId: c, messageId: `${c}-${i}`, body: `${c} ${i}` })),
        );
    }
    const lines: string[] = [];
    const bySession = new Map<string, string[]>();
    let held = 0;
    let mostHeld = 0;
    const all = signal();
    const log = errorLog();
    const receiver = processor(
      queue,
      {
        processMessage: ({ message, sessionId }) => {
          lines.push(
            `Received message on session '${sessionId}' with '${message.messageId}' and content '${message.text}'`,
          );
          bySession.set(sessionId, [...(bySession.get(sessionId) ?? []), message.text]);
          if (lines.length === 16) all.resolve();
        },
        processError: log.processError,
        sessionInitializing: () => {
          held++;
          mostHeld = Math.max(mostHeld, held);
        },
        sessionClosing: () => {
          held--;
        },
      },
      {
        autoCompleteMessages: true,
        maxConcurrentSessions: 1,
        maxAutoLockRenewalDurationMs: 10 * 60_000,
        sessionIdleTimeoutMs: 2_000,
      },
    );
    await receiver.start();
    await within(all.promise, 30_000, "16 messages");
    await receiver.stop();

    expect(mostHeld).toBe(1);
    for (const colour of colours) {
      expect(bySession.get(colour)).toEqual([1, 2, 3, 4].map((i) => `${colour} ${i}`));
    }
    // One session at a time: each session's lines come together.
    const order = lines.map((line) => /session '(\w+)'/.exec(line)?.[1]);
    const runs = order.filter((session, i) => session !== order[i - 1]);
    expect(runs).toHaveLength(4);
    expect(lines).toContain(
      "Received message on session 'Orange' with 'Orange-1' and content 'Orange 1'",
    );
    expect(log.errors).toEqual([]);
    expect(await client.peek(queue, { maxMessages: 20 })).toEqual([]);
  });

  it("processes 50 sessions x 20 messages with 8 sessions at once, each session in order", async ({
    expect,
  }) => {
    const queue = await sessionQueue("many");
    const sessions = Array.from({ length: 50 }, (_, i) => `s${i}`);
    for (let n = 1; n <= 20; n++) {
      await client.sender(queue).sendBatch(sessions.map((s) => ({ sessionId: s, body: `${n}` })));
    }
    const seen = new Map<string, number[]>();
    let count = 0;
    let active = 0;
    let mostActive = 0;
    const all = signal();
    const log = errorLog();
    const many = processor(
      queue,
      {
        processMessage: async ({ message, sessionId }) => {
          seen.set(sessionId, [...(seen.get(sessionId) ?? []), Number(message.text)]);
          if (++count === 1000) all.resolve();
        },
        processError: log.processError,
        sessionInitializing: () => {
          active++;
          mostActive = Math.max(mostActive, active);
        },
        sessionClosing: () => {
          active--;
        },
      },
      { maxConcurrentSessions: 8, sessionIdleTimeoutMs: 500 },
    );
    await many.start();
    await within(all.promise, 60_000, "1000 messages");
    await many.stop();

    const inOrder = Array.from({ length: 20 }, (_, i) => i + 1);
    for (const s of sessions) expect(seen.get(s), s).toEqual(inOrder);
    expect(mostActive).toBeLessThanOrEqual(8);
    expect(mostActive).toBeGreaterThan(1);
    expect(log.errors).toEqual([]);
    expect(await client.peek(queue, { maxMessages: 10 })).toEqual([]);
  });

  it("abandons the message of a throwing handler: it comes again with delivery count + 1", async ({
    expect,
  }) => {
    const queue = await sessionQueue("throws");
    await client.sender(queue).sendBatch([
      { sessionId: "s", body: "first" },
      { sessionId: "s", body: "second" },
    ]);
    const handled: [string, number][] = [];
    const done = signal();
    const log = errorLog();
    const failing = processor(
      queue,
      {
        processMessage: ({ message }) => {
          handled.push([message.text, message.deliveryCount]);
          if (message.text === "first" && message.deliveryCount === 1) {
            throw new Error("handler failed");
          }
          if (message.text === "second") done.resolve();
        },
        processError: log.processError,
      },
      { maxConcurrentSessions: 1, sessionIdleTimeoutMs: 5_000 },
    );
    await failing.start();
    await within(done.promise, 20_000, "the second message");
    await failing.stop();

    expect(handled).toEqual([
      ["first", 1],
      ["first", 2],
      ["second", 1],
    ]);
    expect(log.errors).toHaveLength(1);
    expect(log.errors[0]?.error).toMatchObject({ message: "handler failed" });
    expect(log.errors[0]?.info).toMatchObject({ source: "processMessage", sessionId: "s" });
    expect(log.errors[0]?.info.message?.text).toBe("first");
    expect(await client.peek(queue, { maxMessages: 10 })).toEqual([]);
  });

  it("renews the session lock through a 12 s handler on a queue with a 5 s lock", async ({
    expect,
  }) => {
    const queue = await sessionQueue("renew", 5_000);
    await client.sender(queue).send({ sessionId: "long", body: "slow work" });
    const done = signal<{ deliveryCount: number; heldAt7s: unknown }>();
    const log = errorLog();
    const slow = processor(
      queue,
      {
        processMessage: async ({ message }) => {
          // The work takes 12 s; after 7 s the 5 s lock would long be gone without renewal.
          await delay(7_000);
          const heldAt7s = await other.acceptSession(queue, "long").then(
            (s) => s.close().then(() => "accepted"),
            (error: unknown) => error,
          );
          await delay(5_000);
          done.resolve({ deliveryCount: message.deliveryCount, heldAt7s });
        },
        processError: log.processError,
      },
      { maxConcurrentSessions: 1, sessionIdleTimeoutMs: 1_000 },
    );
    await slow.start();
    const outcome = await within(done.promise, 30_000, "the 12 s handler");
    await slow.stop();

    expect(outcome.deliveryCount).toBe(1);
    expect(outcome.heldAt7s).toBeInstanceOf(SessionCannotBeLockedError);
    // The auto-completion after 12 s went through under the renewed lock.
    expect(log.errors).toEqual([]);
    expect(await client.peek(queue, { maxMessages: 10 })).toEqual([]);
  });

  it("reports a lost session lock and carries on with other sessions", async ({ expect }) => {
    const queue = await sessionQueue("lost", 5_000);
    await client.sender(queue).send({ sessionId: "slow", body: "outlives the lock" });
    const handled: [string, number][] = [];
    const slowStarted = signal();
    const all = signal();
    const log = errorLog();
    const unrenewed = processor(
      queue,
      {
        processMessage: async ({ message, sessionId }) => {
          handled.push([sessionId, message.deliveryCount]);
          if (sessionId === "slow" && message.deliveryCount === 1) {
            slowStarted.resolve();
            // Without renewal the 5 s lock runs out while this works.
            await delay(6_500);
          }
          if (handled.length === 3) all.resolve();
        },
        processError: log.processError,
      },
      { maxConcurrentSessions: 1, maxAutoLockRenewalDurationMs: 0, sessionIdleTimeoutMs: 500 },
    );
    await unrenewed.start();
    await within(slowStarted.promise, 10_000, "the slow handler");
    await client.sender(queue).send({ sessionId: "other", body: "meanwhile" });
    await within(all.promise, 30_000, "both sessions");
    await unrenewed.stop();

    // The lost lock was reported once; the message came again with its count raised.
    expect(log.errors).toHaveLength(1);
    expect(log.errors[0]?.error).toBeInstanceOf(SessionLockLostError);
    expect(log.errors[0]?.info).toMatchObject({ source: "complete", sessionId: "slow" });
    expect(handled).toHaveLength(3);
    expect(handled).toContainEqual(["other", 1]);
    expect(handled).toContainEqual(["slow", 2]);
    expect(await client.peek(queue, { maxMessages: 10 })).toEqual([]);
  });

  it("releases a quiet session after the idle timeout and moves on to another", async ({
    expect,
  }) => {
    const queue = await sessionQueue("idle");
    await client.sender(queue).send({ sessionId: "quiet", body: "only one" });
    const events: string[] = [];
    const quietHandled = signal();
    const busyHandled = signal();
    const log = errorLog();
    const idle = processor(
      queue,
      {
        processMessage: ({ sessionId }) => {
          events.push(`message ${sessionId}`);
          if (sessionId === "quiet") quietHandled.resolve();
          else busyHandled.resolve();
        },
        processError: log.processError,
        sessionInitializing: ({ sessionId }) => void events.push(`open ${sessionId}`),
        sessionClosing: ({ sessionId }) => void events.push(`close ${sessionId}`),
      },
      { maxConcurrentSessions: 1, sessionIdleTimeoutMs: 1_000 },
    );
    await idle.start();
    await within(quietHandled.promise, 10_000, "the quiet session's message");
    const sentAt = Date.now();
    await client.sender(queue).send({ sessionId: "busy", body: "work" });
    await within(busyHandled.promise, 10_000, "the busy session's message");
    const tookMs = Date.now() - sentAt;

    expect(events).toEqual([
      "open quiet",
      "message quiet",
      "close quiet",
      "open busy",
      "message busy",
    ]);
    // The only slot held "quiet" until it had been idle for 1 s.
    expect(tookMs).toBeGreaterThanOrEqual(500);
    // "quiet" is free again: another receiver gets it at once.
    const quiet = await within(other.acceptSession(queue, "quiet"), 5_000, "accept quiet");
    await quiet.close();
    await idle.stop();
    expect(log.errors).toEqual([]);
  });

  it("with sessionIds, processes only the named sessions", async ({ expect }) => {
    const queue = await sessionQueue("named");
    await client
      .sender(queue)
      .sendBatch(
        ["x", "y", "z"].flatMap((s) => [1, 2].map((i) => ({ sessionId: s, body: `${s} ${i}` }))),
      );
    const handled: string[] = [];
    const both = signal();
    const log = errorLog();
    const named = processor(
      queue,
      {
        processMessage: ({ message }) => {
          handled.push(message.text);
          if (handled.length === 4) both.resolve();
        },
        processError: log.processError,
      },
      { sessionIds: ["x", "y"], maxConcurrentSessions: 8, sessionIdleTimeoutMs: 500 },
    );
    await named.start();
    await within(both.promise, 10_000, "the messages of x and y");
    await named.stop();

    expect(handled.filter((t) => t.startsWith("x"))).toEqual(["x 1", "x 2"]);
    expect(handled.filter((t) => t.startsWith("y"))).toEqual(["y 1", "y 2"]);
    expect(handled).toHaveLength(4);
    const left = await client.peek(queue, { maxMessages: 10 });
    expect(left.map((m) => m.text)).toEqual(["z 1", "z 2"]);
    expect(log.errors).toEqual([]);
  });

  it("stop() lets running handlers finish and leaves no session locked", async ({ expect }) => {
    const queue = await sessionQueue("stop");
    for (let i = 1; i <= 3; i++) {
      await client
        .sender(queue)
        .sendBatch(["a", "b", "c"].map((s) => ({ sessionId: s, body: `${s} ${i}` })));
    }
    const gate = signal();
    const inFlight = signal();
    const started: string[] = [];
    const finished: string[] = [];
    const log = errorLog();
    const stopping = processor(
      queue,
      {
        processMessage: async ({ message }) => {
          started.push(message.text);
          if (started.length === 3) inFlight.resolve();
          await gate.promise;
          finished.push(message.text);
        },
        processError: log.processError,
      },
      { maxConcurrentSessions: 3, sessionIdleTimeoutMs: 30_000 },
    );
    await stopping.start();
    await within(inFlight.promise, 10_000, "three handlers running");
    // stop() resolves only after the running handlers finished.
    const stop = stopping.stop().then(() => [...finished]);
    gate.resolve();
    expect((await within(stop, 10_000, "stop()")).sort()).toEqual(["a 1", "b 1", "c 1"]);

    expect(started.sort()).toEqual(["a 1", "b 1", "c 1"]);
    expect(finished.sort()).toEqual(["a 1", "b 1", "c 1"]);
    expect(stopping.isRunning).toBe(false);
    expect(await lockedSessions(queue)).toEqual([]);
    // Each session can be taken at once; the read-ahead came back with counts unchanged.
    const a = await within(other.acceptSession(queue, "a"), 5_000, "accept a");
    const next = await a.receiveMessage({ maxWaitMs: 5_000 });
    expect(next).toMatchObject({ text: "a 2", deliveryCount: 1 });
    await a.close();
    expect(log.errors).toEqual([]);
  });
});
