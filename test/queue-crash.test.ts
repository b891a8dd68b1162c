/**
 * Crashes: a broker process killed with SIGKILL, and a nats-server restarted under a running
 * broker. Each test has its own nats-server (in a temporary store directory), so it can stop
 * and restart it without touching the run's shared one.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type NatsServerProcess, startNatsServer } from "../src/store/nats-server-process.js";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import {
  bodyText,
  errorReason,
  type ReceivedMessage,
  type ReceiveStream,
  SessionbusClient,
  seconds,
  uniqueName,
  within,
} from "./support/grpc-client.js";
import { SessionClient } from "./support/session-client.js";

const MESSAGES = 1_000;
const LEFT_LOCKED = 10;
const EXIT_BOUND_MS = 10_000;

let storeDir: string;
let nats: NatsServerProcess | undefined;
const brokers: BrokerProcess[] = [];
const clients: SessionbusClient[] = [];
const streams: ReceiveStream[] = [];
const cleanups: (() => void)[] = [];
const onCleanup = (cleanup: () => void) => cleanups.push(cleanup);

beforeEach(async () => {
  storeDir = await mkdtemp(join(tmpdir(), "sessionbus-crash-"));
  nats = await startNatsServer({ storeDir, credentials: "none" });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  for (const stream of streams.splice(0)) stream.cancel();
  for (const client of clients.splice(0)) client.close();
  await Promise.all(brokers.splice(0).map((broker) => broker.stop()));
  await nats?.stop();
  nats = undefined;
  await rm(storeDir, { recursive: true, force: true });
});

async function startBroker(
  natsUrl: string,
): Promise<{ broker: BrokerProcess; client: SessionbusClient }> {
  const broker = await startBrokerProcess({ natsUrl });
  brokers.push(broker);
  const client = new SessionbusClient(broker.url);
  clients.push(client);
  return { broker, client };
}

function open(client: SessionbusClient, entityPath: string, prefetch: number): ReceiveStream {
  const stream = client.receiveStream({ entityPath, prefetch });
  streams.push(stream);
  return stream;
}

/**
 * Retries `call` while the broker answers UNAVAILABLE or INTERNAL (the store is not back
 * yet), up to `timeoutMs`; any other error fails at once.
 */
async function whenServing<T>(call: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      const { code, message } = errorReason(error);
      const transient = code === grpc.status.UNAVAILABLE || code === grpc.status.INTERNAL;
      if (!transient || Date.now() > deadline) {
        throw new Error(`the broker did not serve again within ${timeoutMs} ms: ${message}`, {
          cause: error,
        });
      }
      await delay(250); // a retry interval while polling a bounded condition
    }
  }
}

describe("kill -9 of the broker", () => {
  it("loses nothing: the queue and all 1,000 messages survive; locked ones come back", {
    timeout: 180_000,
  }, async () => {
    const natsUrl = (nats as NatsServerProcess).url;
    const first = await startBroker(natsUrl);
    const queue = uniqueName("crash");
    await first.client.createQueue(queue, { lockDuration: seconds(5) });

    const bodies = new Map<string, string>(); // sequence number -> body
    for (let from = 0; from < MESSAGES; from += 250) {
      const batch = Array.from({ length: 250 }, (_, i) => ({
        messageId: `${queue}-${from + i}`,
        body: Buffer.from(`message ${from + i}`),
      }));
      const results = await first.client.send(queue, batch);
      results.forEach((r, i) => {
        bodies.set(r.sequenceNumber, `message ${from + i}`);
      });
    }
    expect(bodies.size).toBe(MESSAGES);

    // Ten delivered and left locked, unsettled.
    const locking = open(first.client, queue, LEFT_LOCKED);
    const locked = await locking.take(LEFT_LOCKED);
    const lockedSequences = new Set(locked.map((m) => m.sequenceNumber));
    expect(lockedSequences.size).toBe(LEFT_LOCKED);
    for (const message of locked) expect(message.deliveryCount).toBe(1);

    first.broker.kill("SIGKILL");
    const exit = await within(first.broker.exited, EXIT_BOUND_MS, "the killed broker to exit");
    expect(exit.signal).toBe("SIGKILL");
    // The stream of the dead broker ends with an error, not silently.
    expect((await locking.finalStatus()).code).not.toBe(grpc.status.OK);

    const second = await startBroker(natsUrl);
    const { client } = second;

    const got = await client.getQueue(queue);
    expect(got.name).toBe(queue);
    const peeked = await client.peekAll(queue);
    expect(peeked).toHaveLength(MESSAGES);
    expect(new Set(peeked.map((m) => m.sequenceNumber))).toEqual(new Set(bodies.keys()));
    for (const message of peeked)
      expect(bodyText(message)).toBe(bodies.get(message.sequenceNumber));

    // Receive everything: 990 at once, the 10 once their locks (5 s) have expired. On a
    // loaded machine a prefetched message can outwait its 5 s lock before it is completed:
    // its completion then fails MESSAGE_LOCK_LOST and it comes again, which is no loss.
    const stream = open(client, queue, 20);
    const received = new Map<string, ReceivedMessage>();
    const lockLost = new Map<string, number>(); // sequence number -> completions refused
    const deadline = Date.now() + 120_000;
    while (received.size < MESSAGES) {
      const message = await stream.next(Math.max(1, deadline - Date.now()));
      if (message === undefined) throw new Error(`the stream ended after ${received.size}`);
      expect(received.has(message.sequenceNumber)).toBe(false);
      try {
        await client.complete(queue, message.lockToken);
        received.set(message.sequenceNumber, message);
      } catch (error) {
        if (errorReason(error).reason !== "MESSAGE_LOCK_LOST") throw error;
        lockLost.set(message.sequenceNumber, (lockLost.get(message.sequenceNumber) ?? 0) + 1);
      }
    }
    stream.cancel();

    expect(new Set(received.keys())).toEqual(new Set(bodies.keys()));
    for (const [sequence, message] of received) {
      expect(bodyText(message)).toBe(bodies.get(sequence));
      // Each delivery whose lock ran out counts: the one the killed broker held, and any
      // whose completion came too late.
      expect(message.deliveryCount, `delivery_count of ${sequence}`).toBe(
        1 + (lockedSequences.has(sequence) ? 1 : 0) + (lockLost.get(sequence) ?? 0),
      );
    }
    expect(await client.peek(queue)).toEqual([]);
  });
});

describe("restart of the nats-server", () => {
  it("keeps queues and messages; the connected broker serves again", async () => {
    const server = nats as NatsServerProcess;
    const { broker, client } = await startBroker(server.url);
    const queue = uniqueName("nats-restart");
    await client.createQueue(queue);
    const sent = await client.send(
      queue,
      Array.from({ length: 50 }, (_, i) => ({ body: Buffer.from(`before ${i}`) })),
    );

    // The broker's log says when it loses NATS and when it has it back.
    const lost = broker.nextLine(/NATS connection lost/, 30_000);
    const restored = broker.nextLine(/NATS connection restored/, 60_000);
    await server.stop();
    await lost;
    nats = await startNatsServer({ storeDir, port: server.port, credentials: "none" });

    // The broker reconnects by itself (same URL); wait, bounded, until it answers again.
    const peeked = await whenServing(() => client.peekAll(queue), 30_000);
    await restored;
    expect(peeked.map((m) => m.sequenceNumber)).toEqual(sent.map((r) => r.sequenceNumber));
    expect(peeked.map(bodyText)).toEqual(sent.map((_, i) => `before ${i}`));
    expect((await client.getQueue(queue)).runtimeInfo?.activeMessageCount).toBe("50");

    // Sending and receiving work on the restarted server.
    await client.send(queue, [{ body: Buffer.from("after") }]);
    const stream = open(client, queue, 51);
    const received = await stream.take(51, 30_000);
    for (const message of received) await client.complete(queue, message.lockToken);
    stream.cancel();
    expect(received.map(bodyText)).toEqual([...sent.map((_, i) => `before ${i}`), "after"]);
    expect(await client.peek(queue)).toEqual([]);

    // A queue created after the restart works too.
    const later = uniqueName("nats-restart-later");
    await client.createQueue(later);
    await client.send(later, [{ body: Buffer.from("x") }]);
    expect(await client.peek(later)).toHaveLength(1);
  });

  it("keeps a held session receiving: its consumer, kept in memory, is made again", async () => {
    const server = nats as NatsServerProcess;
    const { broker } = await startBroker(server.url);
    const client = new SessionClient(broker.url);
    onCleanup(() => client.close());
    const queue = uniqueName("nats-restart-session");
    await client.createSessionQueue(queue);
    await client.send(
      queue,
      [1, 2, 3].map((n) => ({ sessionId: "s", body: Buffer.from(`before ${n}`) })),
    );
    const lock = await client.acceptNamed(queue, "s");
    const session = { sessionId: lock.sessionId, lockToken: lock.lockToken };
    const stream = client.receiveStream({ entityPath: queue, session, prefetch: 10 });
    onCleanup(() => stream.cancel());
    const before = await stream.take(3);
    await client.settle({
      entityPath: queue,
      lockTokens: before.map((m) => m.lockToken),
      disposition: "DISPOSITION_COMPLETE",
      session,
    });

    await server.stop();
    nats = await startNatsServer({ storeDir, port: server.port, credentials: "none" });

    await whenServing(
      () => client.send(queue, [{ sessionId: "s", body: Buffer.from("after") }]),
      30_000,
    );
    // The same stream, under the same lock, delivers the message sent after the restart,
    // after recalled events for the consumer it made again (empty: nothing was in flight).
    const recalled: string[][] = [];
    let after: ReceivedMessage | undefined;
    while (after === undefined && recalled.length < 5) {
      const event = await stream.event(30_000);
      if (event?.kind === "message") after = event.message;
      else if (event?.kind === "recalled") recalled.push(event.lockTokens);
      else throw new Error("the stream ended");
    }
    expect(recalled.length).toBeGreaterThan(0);
    expect(recalled.flat()).toEqual([]);
    if (after === undefined) throw new Error("no message after five recalled events");
    expect(bodyText(after)).toBe("after");
    await client.settle({
      entityPath: queue,
      lockTokens: [after.lockToken],
      disposition: "DISPOSITION_COMPLETE",
      session,
    });
    expect(await client.peekAll(queue, "s")).toEqual([]);
  });

  it("gives a session held through another broker a new consumer after the restart", async () => {
    const server = nats as NatsServerProcess;
    const { broker: first } = await startBroker(server.url);
    const { broker: second } = await startBroker(server.url);
    const holder = new SessionClient(first.url);
    const other = new SessionClient(second.url);
    onCleanup(() => holder.close());
    onCleanup(() => other.close());
    const queue = uniqueName("nats-restart-other");
    await holder.createSessionQueue(queue);
    await holder.send(
      queue,
      [1, 2].map((n) => ({ sessionId: "o", body: Buffer.from(`${n}`) })),
    );
    const lock = await holder.acceptNamed(queue, "o");
    const session = { sessionId: lock.sessionId, lockToken: lock.lockToken };

    await server.stop();
    nats = await startNatsServer({ storeDir, port: server.port, credentials: "none" });

    // The second broker never saw this lock; it finds the consumer gone and makes it again.
    await whenServing(() => other.peekAll(queue, "o"), 30_000);
    const stream = other.receiveStream({ entityPath: queue, session, prefetch: 10 });
    onCleanup(() => stream.cancel());
    const received = await stream.take(2, 30_000);
    expect(received.map(bodyText)).toEqual(["1", "2"]);
    await other.settle({
      entityPath: queue,
      lockTokens: received.map((m) => m.lockToken),
      disposition: "DISPOSITION_COMPLETE",
      session,
    });
    expect(await other.peekAll(queue, "o")).toEqual([]);
  });
});
