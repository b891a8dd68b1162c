/**
 * Health tells the truth about the store: grpc.health.v1 says NOT_SERVING while the store
 * cannot take writes (no quorum in the cluster, no NATS connection) and SERVING again once
 * it can, as a client watching health sees it (test/support/health-watch.ts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { startNatsServer } from "../src/store/nats-server-process.js";
import { startInProcessBroker } from "./support/grpc-broker.js";
import {
  bodyText,
  type ReceivedMessage,
  SessionbusClient,
  uniqueName,
} from "./support/grpc-client.js";
import { watchHealth } from "./support/health-watch.js";
import { type NatsCluster, startNatsCluster } from "./support/nats-cluster.js";

/**
 * How long health may take to follow the store: a probe every 2 s with 2 s to answer makes
 * 4 s; the rest is for a busy 2-core machine.
 */
const NOTICE_MS = 20_000;
/** Restarted nodes elect the streams' leaders again before writes succeed. */
const RECOVERY_MS = 60_000;

const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe("health on a 3-node cluster with SESSIONBUS_REPLICAS=3", () => {
  let cluster: NatsCluster;

  it("says NOT_SERVING while two of three nodes are down (no quorum) and SERVING once they are back, and the store takes writes again", async () => {
    cluster = await startNatsCluster();
    cleanups.push(() => cluster.stop());
    const [kept, ...killed] = cluster.nodes;
    if (kept === undefined) throw new Error("the cluster has no nodes");
    // Connected to the node that stays up: what fails is the quorum, not the connection.
    const broker = await startInProcessBroker({
      ...cluster.brokerConfig(3),
      natsUrl: kept.url,
    });
    cleanups.push(() => broker.close());
    const client = new SessionbusClient(broker.url);
    cleanups.push(async () => client.close());
    const queue = uniqueName("quorum");
    await client.createQueue(queue);
    const health = watchHealth(broker.url);
    cleanups.push(async () => health.close());
    await health.until("SERVING", NOTICE_MS);

    await Promise.all(killed.map((node) => node.kill()));
    const lostAt = Date.now();
    await health.until("NOT_SERVING", NOTICE_MS);
    const noticedMs = Date.now() - lostAt;

    await Promise.all(killed.map((node) => node.start()));
    const backAt = Date.now();
    await health.until("SERVING", RECOVERY_MS);
    const recoveredMs = Date.now() - backAt;
    // The store takes writes again. Each stream elects its leader on its own, so the queue's
    // may come a few seconds after the health stream's: a send is retried until then.
    const electedMs = await sendUntilStored(client, queue, "after the outage", RECOVERY_MS);
    const receivingAt = Date.now();
    const received = await receiveOneUntilServed(client, queue, RECOVERY_MS);
    expect(bodyText(received)).toBe("after the outage");
    const receivedMs = Date.now() - receivingAt;
    // Later elections may move leaders again; the outage itself is one NOT_SERVING spell.
    expect(health.history.slice(0, 3).map((change) => change.status)).toEqual([
      "SERVING",
      "NOT_SERVING",
      "SERVING",
    ]);
    console.log(
      `health: NOT_SERVING ${noticedMs} ms after the quorum was lost, SERVING ${recoveredMs} ms after the nodes were started again; the queue's stream took a send ${electedMs} ms after SERVING, and a receiver had it ${receivedMs} ms later`,
    );
  }, 180_000);
});

/**
 * Receives one message, opening the receive stream again while it fails with UNAVAILABLE:
 * the queue's consumer elects its leader on its own, after the stream's, and until then the
 * broker cannot reach it. A receiver may also get the message some time after the send: the
 * consumer's leader may sit on a node whose copy of the stream is still catching up.
 */
function receiveOneUntilServed(
  client: SessionbusClient,
  queue: string,
  timeoutMs: number,
): Promise<ReceivedMessage> {
  return whileUnavailable(timeoutMs, async (leftMs) => {
    const stream = client.receiveStream({ entityPath: queue, prefetch: 1 });
    try {
      const [received] = await stream.take(1, leftMs);
      if (received === undefined) throw new Error("no message");
      return received;
    } finally {
      stream.cancel();
    }
  });
}

/**
 * Sends until the broker stores the message, retrying while it answers UNAVAILABLE (the
 * stream has no leader yet); resolves with how long that took.
 */
async function sendUntilStored(
  client: SessionbusClient,
  queue: string,
  body: string,
  timeoutMs: number,
): Promise<number> {
  const start = Date.now();
  await whileUnavailable(timeoutMs, () => client.send(queue, [{ body: Buffer.from(body) }]));
  return Date.now() - start;
}

/** Runs `attempt` (given the time left) again while it fails with UNAVAILABLE, up to `timeoutMs`. */
async function whileUnavailable<T>(
  timeoutMs: number,
  attempt: (leftMs: number) => Promise<T>,
): Promise<T> {
  const start = Date.now();
  for (;;) {
    try {
      return await attempt(Math.max(1, timeoutMs - (Date.now() - start)));
    } catch (error) {
      const code = (error as Partial<grpc.ServiceError>).code;
      if (code !== grpc.status.UNAVAILABLE || Date.now() - start > timeoutMs) throw error;
    }
  }
}

describe("health on a single nats-server", () => {
  it("says NOT_SERVING while the NATS connection is down and SERVING once it is back", async () => {
    const storeDir = await mkdtemp(join(tmpdir(), "sessionbus-health-"));
    cleanups.push(() => rm(storeDir, { recursive: true, force: true }));
    const first = await startNatsServer({ storeDir, credentials: "none" });
    let server = first;
    cleanups.push(() => server.stop());
    const broker = await startInProcessBroker({ natsUrl: first.url });
    cleanups.push(() => broker.close());
    const health = watchHealth(broker.url);
    cleanups.push(async () => health.close());
    await health.until("SERVING", NOTICE_MS);

    await first.stop();
    await health.until("NOT_SERVING", NOTICE_MS);

    server = await startNatsServer({ storeDir, credentials: "none", port: first.port });
    await health.until("SERVING", RECOVERY_MS);
    expect(health.history.map((change) => change.status)).toEqual([
      "SERVING",
      "NOT_SERVING",
      "SERVING",
    ]);
  }, 120_000);
});
