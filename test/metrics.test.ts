/**
 * Prometheus metrics at /metrics on the HTTP port: who may read them, the counts moving as
 * messages flow, the per-entity gauges (sessions included), RPC and NATS latencies, and the
 * cap on entity labels. The brokers here run on a nats-server of this file's own, so the
 * entities the metrics show are this file's alone.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningSessionbus, startSessionbus } from "../src/app.js";
import {
  createSessionBusClient,
  QuotaExceededError,
  type ReceivedMessage,
  type SessionBusClient,
} from "../src/client/index.js";
import type { SessionbusConfig } from "../src/config.js";
import { type NatsServerProcess, startNatsServer } from "../src/store/nats-server-process.js";
import {
  mintToken,
  rootToken,
  TEST_ROOT_KEY,
  testConnectionString,
} from "./support/test-credentials.js";

const METRICS_TOKEN = "a-scraper-secret-of-the-tests-0123456789";

let storeDir: string;
let nats: NatsServerProcess;
const brokers: RunningSessionbus[] = [];
const clients: SessionBusClient[] = [];

beforeAll(async () => {
  storeDir = await mkdtemp(join(tmpdir(), "sessionbus-metrics-"));
  nats = await startNatsServer({ storeDir, credentials: "none" });
});

afterAll(async () => {
  for (const client of clients) await client.close();
  for (const broker of brokers) await broker.close();
  await nats?.stop();
  await rm(storeDir, { recursive: true, force: true });
});

async function startBroker(metrics: SessionbusConfig["metrics"] = {}): Promise<RunningSessionbus> {
  const broker = await startSessionbus({
    host: "127.0.0.1",
    port: 0,
    natsUrl: nats.url,
    dataDir: "unused",
    natsServerBin: undefined,
    auth: { enabled: true, rootKey: TEST_ROOT_KEY },
    metrics,
  });
  brokers.push(broker);
  return broker;
}

function clientOf(broker: RunningSessionbus): SessionBusClient {
  const client = createSessionBusClient({ connectionString: testConnectionString(broker.url) });
  clients.push(client);
  return client;
}

async function scrapeResponse(broker: RunningSessionbus, authorization?: string) {
  return fetch(`${broker.httpUrl}/metrics`, {
    headers: authorization === undefined ? {} : { authorization },
  });
}

/** The metrics text, read with the root rule's token. */
async function scrape(broker: RunningSessionbus): Promise<string> {
  const response = await scrapeResponse(broker, rootToken());
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of one sample, or undefined when the text has no such series. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) {
      return Number(match[3]);
    }
  }
  return undefined;
}

/** The values of `name` by label `label`, e.g. every entity's sent count. */
function labelValues(text: string, name: string, label: string): string[] {
  const values = new Set<string>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const value = new RegExp(`${label}="((?:[^"\\\\]|\\\\.)*)"`).exec(line)?.[1];
    if (value !== undefined) values.add(value);
  }
  return [...values];
}

/** Scrapes until `check` passes (gauges are read at most once a second), within a bound. */
async function eventually(
  broker: RunningSessionbus,
  check: (text: string) => void,
): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = await scrape(broker);
    try {
      check(text);
      return text;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

describe("/metrics", () => {
  let broker: RunningSessionbus;

  beforeAll(async () => {
    broker = await startBroker({ token: METRICS_TOKEN });
  });

  it("answers only a namespace Manage token or the metrics token, with auth on", async () => {
    expect((await scrapeResponse(broker)).status).toBe(401);
    expect((await scrapeResponse(broker, "Bearer not-the-metrics-token-at-all")).status).toBe(401);
    // A token for one queue does not reach every entity's figures.
    const queueToken = mintToken({ entityPath: "some-queue" });
    expect((await scrapeResponse(broker, queueToken)).status).toBe(401);
    const scraper = await scrapeResponse(broker, `Bearer ${METRICS_TOKEN}`);
    expect(scraper.status).toBe(200);
    expect(scraper.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await scraper.text()).toContain("sessionbus_rpc_duration_seconds");
    expect((await scrapeResponse(broker, rootToken())).status).toBe(200);
    const post = await fetch(`${broker.httpUrl}/metrics`, { method: "POST", body: "" });
    expect(post.status).toBe(405);
  });

  it("shows the counts and gauges of a queue moving as messages flow", async () => {
    const client = clientOf(broker);
    const queue = `metrics-${randomUUID()}`;
    await client.createQueue(queue, { lockDurationMs: 5_000 });
    const entity = { entity: queue };
    // An idle queue has its series from the start, at zero.
    await eventually(broker, (text) => {
      expect(sample(text, "sessionbus_messages_sent_total", entity)).toBe(0);
      expect(sample(text, "sessionbus_entity_active_messages", entity)).toBe(0);
    });

    await client.sender(queue).sendBatch([{ body: "a" }, { body: "b" }, { body: "c" }]);
    await eventually(broker, (text) => {
      expect(sample(text, "sessionbus_messages_sent_total", entity)).toBe(3);
      expect(sample(text, "sessionbus_entity_active_messages", entity)).toBe(3);
    });

    const receiver = client.receiver(queue, { prefetch: 3 });
    const received: ReceivedMessage[] = [];
    while (received.length < 3) {
      const next = await receiver.receiveMessage({ maxWaitMs: 10_000 });
      if (!next) throw new Error(`only ${received.length} of 3 messages arrived`);
      received.push(next);
    }
    const [first, second, third] = received as [ReceivedMessage, ReceivedMessage, ReceivedMessage];
    await receiver.complete(first);
    await receiver.complete(second);
    await receiver.abandon(third);
    const again = await receiver.receiveMessage({ maxWaitMs: 10_000 });
    expect(again?.text).toBe(third.text);
    await receiver.deadLetter(again as ReceivedMessage, "tested", "by the metrics test");
    await receiver.close();

    const text = await eventually(broker, (t) => {
      expect(sample(t, "sessionbus_messages_delivered_total", entity)).toBe(4);
      expect(sample(t, "sessionbus_messages_completed_total", entity)).toBe(2);
      expect(sample(t, "sessionbus_messages_abandoned_total", entity)).toBe(1);
      expect(
        sample(t, "sessionbus_messages_dead_lettered_total", { ...entity, cause: "receiver" }),
      ).toBe(1);
      expect(sample(t, "sessionbus_entity_active_messages", entity)).toBe(0);
      expect(sample(t, "sessionbus_entity_dead_lettered_messages", entity)).toBe(1);
    });
    // The receiver's free-text reason never becomes a label.
    expect(text).not.toContain("tested");

    // Calls are timed by method, code and port, refused ones too; NATS requests by operation.
    const send = { method: "sessionbus.v1.MessagingService/Send", code: "OK", port: "grpc" };
    expect(sample(text, "sessionbus_rpc_duration_seconds_count", send)).toBeGreaterThanOrEqual(1);
    expect(
      sample(text, "sessionbus_nats_request_duration_seconds_count", {
        operation: "publish",
        result: "ok",
      }),
    ).toBeGreaterThanOrEqual(3);
    expect(sample(text, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
  });

  it("counts a refused call under its code, on the port it came through", async () => {
    const anonymous = await fetch(`${broker.httpUrl}/sessionbus.v1.AdminService/ListQueues`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(anonymous.status).toBe(401);
    await eventually(broker, (text) => {
      expect(
        sample(text, "sessionbus_rpc_duration_seconds_count", {
          method: "sessionbus.v1.AdminService/ListQueues",
          code: "UNAUTHENTICATED",
          port: "http",
        }),
      ).toBe(1);
    });
  });

  it("counts expired messages and lost message and session locks", async () => {
    const client = clientOf(broker);
    const queue = `metrics-expiry-${randomUUID()}`;
    await client.createQueue(queue, { lockDurationMs: 5_000 });
    const entity = { entity: queue };
    const sessionQueue = `metrics-lapse-${randomUUID()}`;
    await client.createQueue(sessionQueue, { requiresSession: true, lockDurationMs: 5_000 });
    const lapsing = await client.acceptSession(sessionQueue, "lapses");
    await client.sender(queue).send({ body: "short-lived", timeToLiveMs: 1 });
    await client.sender(queue).send({ body: "left locked" });
    const receiver = client.receiver(queue);
    // The first expired before anyone received it: the receiver gets the second only.
    const message = await receiver.receiveMessage({ maxWaitMs: 10_000 });
    expect(message?.text).toBe("left locked");
    // Its lock runs out unsettled.
    await eventually(broker, (text) => {
      expect(sample(text, "sessionbus_messages_expired_total", entity)).toBe(1);
      expect(sample(text, "sessionbus_locks_lost_total", { ...entity, lock: "message" })).toBe(1);
    });
    // The session's lock runs out too (by its own expiry, not renewed): the broker finds it
    // lost when next asked.
    const left = lapsing.lockedUntil.getTime() + 200 - Date.now();
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    await expect(lapsing.renewLock()).rejects.toThrow(/lock/i);
    await eventually(broker, (text) => {
      expect(
        sample(text, "sessionbus_locks_lost_total", { entity: sessionQueue, lock: "session" }),
      ).toBe(1);
    });
    await receiver.close();
  });

  it("shows sessions, locked sessions and state bytes of a session queue", async () => {
    const client = clientOf(broker);
    const queue = `metrics-sessions-${randomUUID()}`;
    await client.createQueue(queue, { requiresSession: true });
    const entity = { entity: queue };
    await client.sender(queue).sendBatch([
      { sessionId: "a", body: "1" },
      { sessionId: "b", body: "2" },
    ]);
    const session = await client.acceptSession(queue, "c");
    const state = "x".repeat(20_000);
    await session.setState(state);
    await eventually(broker, (text) => {
      expect(sample(text, "sessionbus_entity_sessions", entity)).toBe(3);
      expect(sample(text, "sessionbus_entity_locked_sessions", entity)).toBe(1);
      expect(sample(text, "sessionbus_entity_size_bytes", entity)).toBeGreaterThanOrEqual(20_000);
    });
    // The runtime figures of the API say the same.
    const described = await client.getQueue(queue);
    expect(described.runtimeInfo.sessionCount).toBe(3);
    expect(described.runtimeInfo.sizeBytes).toBeGreaterThanOrEqual(20_000);
    await session.close();
  });
});

describe("tokens naming made-up rules", () => {
  it("are refused without the broker reading the rules bucket for each of them", async () => {
    const broker = await startBroker();
    const bucketReads = (text: string) =>
      (sample(text, "sessionbus_nats_request_duration_seconds_count", {
        operation: "direct_get",
      }) ?? 0) +
      (sample(text, "sessionbus_nats_request_duration_seconds_count", {
        operation: "stream_msg_get",
      }) ?? 0);
    const refuse = async (keyName: string) => {
      const answer = await fetch(`${broker.httpUrl}/sessionbus.v1.AdminService/ListQueues`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: mintToken({
            keyName,
            key: "bm90LWEta2V5LW9mLWFueS1ydWxlLWF0LWFsbC0wMTIzNDU=",
          }),
        },
        body: "{}",
      });
      expect(answer.status).toBe(401);
      expect(await answer.text()).toContain("TOKEN_INVALID");
    };
    const before = bucketReads(await scrape(broker));
    // One made-up name, 200 times: read once (and again after a second at most).
    for (let i = 0; i < 200; i++) await refuse("made-up-rule");
    // 500 names, each new: at most 50 reads a second.
    const started = Date.now();
    await Promise.all(Array.from({ length: 500 }, (_, i) => refuse(`made-up-${i}`)));
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    const reads = bucketReads(await scrape(broker)) - before;
    console.log(`rules bucket reads for 700 refused tokens: ${reads} (in ${seconds} s)`);
    expect(reads).toBeLessThanOrEqual(10 + 50 * seconds);
    expect(reads).toBeLessThan(700);
    // The broker still answers its own rules.
    const listed = await fetch(`${broker.httpUrl}/sessionbus.v1.AdminService/ListQueues`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: rootToken() },
      body: "{}",
    });
    expect(listed.status).toBe(200);
  });
});

describe("the entity label cap", () => {
  it('sums the counts of entities past the cap under entity="(other)"', async () => {
    const broker = await startBroker({ maxEntities: 0 });
    const client = clientOf(broker);
    const queues = [1, 2].map((n) => `metrics-cap-${n}-${randomUUID()}`);
    for (const queue of queues) {
      await client.createQueue(queue);
      await client.sender(queue).send({ body: "x" });
    }
    const text = await eventually(broker, (t) => {
      expect(
        sample(t, "sessionbus_messages_sent_total", { entity: "(other)" }),
      ).toBeGreaterThanOrEqual(2);
    });
    expect(labelValues(text, "sessionbus_messages_sent_total", "entity")).toEqual(["(other)"]);
    // Gauges are per labelled entity only: none here.
    expect(labelValues(text, "sessionbus_entity_active_messages", "entity")).toEqual([]);
    expect(sample(text, "sessionbus_metrics_entities", { labelled: "true" })).toBe(0);
  });

  it("drops the series of a deleted queue", async () => {
    const broker = await startBroker();
    const client = clientOf(broker);
    const queue = `metrics-deleted-${randomUUID()}`;
    await client.createQueue(queue);
    await client.sender(queue).send({ body: "x" });
    await eventually(broker, (t) => {
      expect(sample(t, "sessionbus_messages_sent_total", { entity: queue })).toBe(1);
    });
    await client.deleteQueue(queue);
    await eventually(broker, (t) => {
      expect(labelValues(t, "sessionbus_messages_sent_total", "entity")).not.toContain(queue);
      expect(labelValues(t, "sessionbus_entity_active_messages", "entity")).not.toContain(queue);
    });
  });
});

describe("/metrics with authorization off", () => {
  it("is served without a token", async () => {
    const broker = await startSessionbus({
      host: "127.0.0.1",
      port: 0,
      natsUrl: nats.url,
      dataDir: "unused",
      natsServerBin: undefined,
      auth: { enabled: false },
    });
    brokers.push(broker);
    expect((await scrapeResponse(broker)).status).toBe(200);
  });
});

describe("session state and max_size_bytes", () => {
  it("counts states towards the quota: a full entity takes no send and no new state", async () => {
    const broker = await startBroker();
    const client = clientOf(broker);
    const queue = `metrics-quota-${randomUUID()}`;
    const MIB = 1024 * 1024;
    await client.createQueue(queue, {
      requiresSession: true,
      maxSizeBytes: MIB,
      maxSessionStateSizeBytes: 2 * MIB,
    });
    const big = await client.acceptSession(queue, "big");
    await big.setState(new Uint8Array(MIB + 1024));
    // The state figure is at most ten seconds old: sends go through until it is read again.
    const deadline = Date.now() + 20_000;
    let refused: unknown;
    while (refused === undefined && Date.now() < deadline) {
      try {
        await client.sender(queue).send({ sessionId: "small", body: "x" });
        await new Promise((resolve) => setTimeout(resolve, 250));
      } catch (error) {
        refused = error;
      }
    }
    expect(refused).toBeInstanceOf(QuotaExceededError);
    const other = await client.acceptSession(queue, "other");
    await expect(other.setState("a little more")).rejects.toBeInstanceOf(QuotaExceededError);
    // Clearing a state is always allowed: it makes room.
    await big.setState(undefined);
    await big.close();
    await other.close();
    // The figures of the session records are up to two seconds old.
    const until = Date.now() + 10_000;
    let size = (await client.getQueue(queue)).runtimeInfo.sizeBytes;
    while (size >= MIB && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      size = (await client.getQueue(queue)).runtimeInfo.sizeBytes;
    }
    expect(size).toBeLessThan(MIB);
  });
});
