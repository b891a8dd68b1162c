/**
 * Two brokers started at the same moment on a new 3-node cluster with SESSIONBUS_REPLICAS=3:
 * both make the store's streams and buckets (SB_HEALTH, the KV buckets, SB_TIMERS) at once.
 * Both must start and serve; one exited once with "sessionbus: timeout" (issue 14).
 */
import { afterEach, describe, expect, it } from "vitest";
import { createSessionBusClient } from "../src/client/index.js";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { uniqueName } from "./support/grpc-client.js";
import { type NatsCluster, startNatsCluster } from "./support/nats-cluster.js";
import { testConnectionString } from "./support/test-credentials.js";

/** New clusters, each with a first start of two brokers at once. */
const ROUNDS = 3;

const running: { cluster?: NatsCluster; brokers: BrokerProcess[] } = { brokers: [] };

afterEach(async () => {
  await Promise.all(running.brokers.map((broker) => broker.stop()));
  running.brokers = [];
  await running.cluster?.stop();
  running.cluster = undefined;
});

describe("two brokers starting at once on a new cluster with 3 replicas", () => {
  for (let round = 1; round <= ROUNDS; round++) {
    it(`both start and serve (new cluster ${round} of ${ROUNDS})`, async () => {
      const cluster = await startNatsCluster();
      running.cluster = cluster;
      const starts = await Promise.allSettled([
        startBrokerProcess({ env: cluster.brokerEnv(3) }),
        startBrokerProcess({ env: cluster.brokerEnv(3) }),
      ]);
      for (const start of starts)
        if (start.status === "fulfilled") running.brokers.push(start.value);
      expect(
        starts.map((start) => (start.status === "rejected" ? String(start.reason) : "started")),
      ).toEqual(["started", "started"]);
      // Each serves: a queue made through one is seen through the other.
      const [first, second] = running.brokers as [BrokerProcess, BrokerProcess];
      const one = createSessionBusClient({ connectionString: testConnectionString(first.url) });
      const other = createSessionBusClient({ connectionString: testConnectionString(second.url) });
      try {
        const queue = uniqueName("first-start");
        await one.createQueue(queue);
        await expect(other.getQueue(queue)).resolves.toMatchObject({ name: queue });
        await other.deleteQueue(queue);
      } finally {
        await one.close();
        await other.close();
      }
    }, 240_000);
  }
});
