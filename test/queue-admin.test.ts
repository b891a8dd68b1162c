/** AdminService over gRPC: get, list with paging, update, delete, and runtime counts. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningSessionbus, startSessionbus } from "../src/app.js";
import { type NatsServerProcess, startNatsServer } from "../src/store/nats-server-process.js";
import { brokerPerFile } from "./support/broker-per-file.js";
import { startTestBroker } from "./support/grpc-broker.js";
import {
  errorReason,
  failure,
  type Queue,
  type ReceivedMessage,
  SessionbusClient,
  seconds,
  toMs,
  uniqueName,
} from "./support/grpc-client.js";
import { TEST_ROOT_KEY } from "./support/test-credentials.js";

let client: SessionbusClient;
brokerPerFile(startTestBroker, (started) => {
  client = started.client;
});

function durationMs(value: { seconds: string; nanos: number } | null | undefined): number {
  return toMs(value);
}

async function receive(queue: string, count: number): Promise<ReceivedMessage[]> {
  const stream = client.receiveStream({ entityPath: queue, prefetch: count, maxMessages: count });
  try {
    return await stream.take(count);
  } finally {
    stream.cancel();
  }
}

describe("GetQueue", () => {
  it("returns the queue as created, with defaults for what was not set", async () => {
    const queue = uniqueName("Admin-Get");
    const created = await client.createQueue(queue, {
      lockDuration: seconds(30),
      maxDeliveryCount: 4,
    });
    const got = await client.getQueue(queue.toLowerCase());
    expect(got.name).toBe(queue);
    expect(got.properties).toEqual(created.properties);
    expect(durationMs(got.properties?.lockDuration)).toBe(30_000);
    expect(got.properties?.maxDeliveryCount).toBe(4);
    expect(got.properties?.requiresSession).toBe(false);
    expect(got.properties?.maxMessageSizeBytes).toBe(String(256 * 1024));
    expect(durationMs(got.properties?.duplicateDetectionWindow)).toBe(10 * 60_000);
    expect(got.runtimeInfo).toMatchObject({
      activeMessageCount: "0",
      deferredMessageCount: "0",
      deadLetterMessageCount: "0",
    });
    expect(toMs(got.runtimeInfo?.createdAt)).toBeGreaterThan(Date.now() - 60_000);
  });
});

describe("ListQueues", () => {
  it("pages through every queue, page_size 2, each of five new ones exactly once", async () => {
    const prefix = uniqueName("admin-list");
    const mine = [3, 1, 4, 0, 2].map((i) => `${prefix}-${i}`);
    for (const queue of mine) await client.createQueue(queue);

    const seen: string[] = [];
    let token = "";
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThan(10_000);
      const page = await client.listQueues(2, token);
      expect(page.queues.length).toBeLessThanOrEqual(2);
      seen.push(...page.queues.map((q: Queue) => q.name));
      if (page.nextPageToken === "") break;
      expect(page.queues.length).toBeGreaterThan(0);
      token = page.nextPageToken;
    }

    const found = seen.filter((queue) => queue.startsWith(`${prefix}-`));
    // Each exactly once, in order of their lower-cased names.
    expect(found).toEqual([...mine].sort());
    // No queue shows up twice anywhere in the listing.
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe("ListQueues while queues come and go", () => {
  it("keeps answering while other clients create and delete queues", async () => {
    const prefix = uniqueName("admin-churn");
    let churning = true;
    const churn = (async () => {
      try {
        for (let i = 0; i < 15; i++) {
          await client.createQueue(`${prefix}-${i}`);
          await client.deleteQueue(`${prefix}-${i}`);
        }
      } finally {
        churning = false;
      }
    })();
    const failures: string[] = [];
    let lists = 0;
    const listers = Array.from({ length: 4 }, async () => {
      while (churning) {
        try {
          await client.listQueues(1000);
          lists++;
        } catch (error) {
          const { codeName, reason, message } = errorReason(error);
          failures.push(`${codeName} ${reason}: ${message}`);
        }
      }
    });
    await Promise.all([churn, ...listers]);
    expect(lists).toBeGreaterThan(0);
    expect(failures).toEqual([]);
  });
});

describe("UpdateQueue", () => {
  it("changes lock_duration; later receives lock for the new duration", async () => {
    const queue = uniqueName("admin-update");
    await client.createQueue(queue, { lockDuration: seconds(10), maxDeliveryCount: 7 });

    const updated = await client.updateQueue(queue, { lockDuration: seconds(45) });
    expect(durationMs(updated.properties?.lockDuration)).toBe(45_000);
    // Fields not named keep their value.
    expect(updated.properties?.maxDeliveryCount).toBe(7);
    const got = await client.getQueue(queue);
    expect(durationMs(got.properties?.lockDuration)).toBe(45_000);
    expect(toMs(got.runtimeInfo?.updatedAt)).toBeGreaterThanOrEqual(
      toMs(got.runtimeInfo?.createdAt),
    );

    await client.send(queue, [{ body: Buffer.from("x") }]);
    const before = Date.now();
    const [message] = await receive(queue, 1);
    const after = Date.now();
    // Locked from the moment it was handed out, for the new 45 s.
    const lockedUntil = toMs(message?.lockedUntil);
    expect(lockedUntil).toBeGreaterThan(before + 44_000); // 1 s for clock jitter
    expect(lockedUntil).toBeLessThanOrEqual(after + 45_000);
    await client.complete(queue, message?.lockToken ?? "");
  });

  it("refuses to change requires_session, and refuses out-of-range values", async () => {
    const queue = uniqueName("admin-update-session");
    await client.createQueue(queue);
    expect(await failure(client.updateQueue(queue, { requiresSession: true }))).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      reason: "INVALID_ARGUMENT",
      field: "properties.requires_session",
    });
    expect(await failure(client.updateQueue(queue, { lockDuration: seconds(1) }))).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: "properties.lock_duration",
    });
    const got = await client.getQueue(queue);
    expect(got.properties?.requiresSession).toBe(false);
    expect(durationMs(got.properties?.lockDuration)).toBe(60_000);
    // Setting it to what it is already is no change.
    await client.updateQueue(queue, { requiresSession: false });
  });
});

describe("DeleteQueue", () => {
  it("removes the queue and its messages; then Get fails NOT_FOUND", async () => {
    const queue = uniqueName("admin-delete");
    await client.createQueue(queue);
    await client.send(queue, [{ body: Buffer.from("doomed") }]);

    await client.deleteQueue(queue);
    const notFound = { code: grpc.status.NOT_FOUND, reason: "ENTITY_NOT_FOUND" };
    expect(await failure(client.getQueue(queue))).toMatchObject(notFound);
    expect(await failure(client.peek(queue))).toMatchObject(notFound);
    expect(await failure(client.send(queue, [{ body: Buffer.from("x") }]))).toMatchObject(notFound);

    // A queue created again under the name starts empty.
    await client.createQueue(queue);
    expect(await client.peek(queue)).toEqual([]);
    expect((await client.getQueue(queue)).runtimeInfo?.activeMessageCount).toBe("0");
  });
});

describe("runtime counts", () => {
  it("counts active, deferred and dead-lettered messages", async () => {
    const queue = uniqueName("admin-counts");
    await client.createQueue(queue);
    await client.send(
      queue,
      ["a", "b", "c", "d", "e"].map((body) => ({ body: Buffer.from(body) })),
    );
    expect((await client.getQueue(queue)).runtimeInfo).toMatchObject({
      activeMessageCount: "5",
      deferredMessageCount: "0",
      deadLetterMessageCount: "0",
    });

    const [a, b, c, d] = await receive(queue, 4);
    if (a === undefined || b === undefined || c === undefined || d === undefined) {
      throw new Error("fewer than 4 messages");
    }
    await client.complete(queue, a.lockToken);
    await client.defer(queue, b.lockToken);
    await client.settle({
      entityPath: queue,
      lockTokens: [c.lockToken],
      disposition: "DISPOSITION_DEAD_LETTER",
      deadLetterReason: "Test",
    });
    // d stays locked: locked messages count as active.
    const runtime = (await client.getQueue(queue)).runtimeInfo;
    expect(runtime).toMatchObject({
      activeMessageCount: "2",
      deferredMessageCount: "1",
      deadLetterMessageCount: "1",
      scheduledMessageCount: "0",
    });
    expect(Number(runtime?.sizeBytes)).toBeGreaterThan(0);

    // Completing the locked and the deferred one leaves e active.
    await client.complete(queue, d.lockToken);
    const [fetched] = await client.receiveDeferred(queue, [b.sequenceNumber]);
    await client.complete(queue, fetched?.lockToken ?? "");
    expect((await client.getQueue(queue)).runtimeInfo).toMatchObject({
      activeMessageCount: "1",
      deferredMessageCount: "0",
      deadLetterMessageCount: "1",
    });
  });
});

describe("many queues on one nats-server", () => {
  let storeDir: string;
  let nats: NatsServerProcess;
  let own: RunningSessionbus;
  let ownClient: SessionbusClient;

  beforeAll(async () => {
    storeDir = await mkdtemp(join(tmpdir(), "sessionbus-admin-many-"));
    nats = await startNatsServer({ storeDir, credentials: "none" });
    own = await startSessionbus({
      host: "127.0.0.1",
      port: 0,
      natsUrl: nats.url,
      dataDir: "unused",
      natsServerBin: undefined,
      auth: { enabled: true, rootKey: TEST_ROOT_KEY },
    });
    ownClient = new SessionbusClient(own.url);
  });

  afterAll(async () => {
    ownClient?.close();
    await own?.close();
    await nats?.stop();
    if (storeDir) await rm(storeDir, { recursive: true, force: true });
  });

  it("creates 100 queues with default properties (max_size is a quota, not a reservation)", async () => {
    const prefix = uniqueName("admin-many");
    for (let i = 0; i < 100; i++) {
      const queue = `${prefix}-${i}`;
      const created = await ownClient.createQueue(queue).catch((error: unknown) => {
        const { codeName, reason, message } = errorReason(error);
        throw new Error(`queue ${i + 1} of 100: ${codeName} ${reason}: ${message}`);
      });
      expect(created.properties?.maxSizeBytes).toBe(String(1024 * 1024 * 1024));
    }
    const listed = await ownClient.listQueues(1000);
    expect(listed.queues.filter((q) => q.name.startsWith(prefix))).toHaveLength(100);
  });
});
