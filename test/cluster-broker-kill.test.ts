/**
 * Issue 14, a broker's crash under load on a cluster: two broker processes on a 3-node
 * cluster with SESSIONBUS_REPLICAS=3, one TypeScript client given both addresses sending to
 * 50 sessions and completing them as it goes (test/support/session-load.ts says exactly what
 * is counted), and the broker it uses killed with SIGKILL mid-run. The client goes on
 * through the other broker; the sessions held through the dead one come back once their
 * locks (5 s) expire. It checks the three zeros: no acknowledged send lost, no session
 * completed out of order, no message completed twice after an acknowledged completion, no
 * two receivers holding one session at once (a session lost with its broker is held until
 * its lock's end).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createSessionBusClient,
  type FailoverEvent,
  type SessionBusClient,
} from "../src/client/index.js";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { createSessionQueueStream } from "./support/cluster-queue.js";
import { uniqueName, within } from "./support/grpc-client.js";
import { type NatsCluster, startNatsCluster } from "./support/nats-cluster.js";
import { NO_VIOLATIONS, startSessionLoad, violations } from "./support/session-load.js";
import { testConnectionString } from "./support/test-credentials.js";

/** Bounds for a busy 2-core machine. */
const PHASE_MS = 60_000;

let cluster: NatsCluster;
const brokers: BrokerProcess[] = [];
let sdk: SessionBusClient;
const failovers: FailoverEvent[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster();
  // One after the other: two brokers making the store's streams at once on a new cluster
  // have failed to start ("sessionbus: timeout").
  brokers.push(await startBrokerProcess({ env: cluster.brokerEnv(3) }));
  brokers.push(await startBrokerProcess({ env: cluster.brokerEnv(3) }));
  sdk = createSessionBusClient({
    connectionString: testConnectionString(brokers.map((broker) => broker.url)),
    onFailover: (event) => failovers.push(event),
  });
}, 180_000);

afterAll(async () => {
  await sdk?.close();
  await Promise.all(brokers.map((broker) => broker.stop()));
  await cluster?.stop();
});

describe("two brokers on a 3-node cluster with 3 replicas, one killed under load", () => {
  it("its client goes on through the other broker: no acknowledged send lost, every session in order and held once", {
    timeout: 5 * PHASE_MS,
  }, async () => {
    const [first, second] = brokers as [BrokerProcess, BrokerProcess];
    const queue = uniqueName("broker-kill");
    await createSessionQueueStream(cluster, sdk, queue);
    const load = startSessionLoad({ sender: sdk, queue, sessions: 50, minPerSession: 20 });
    try {
      await load.waitFor(() => load.completed.size >= 300, PHASE_MS, "300 completions");
      expect(sdk.activeUrl).toBe(first.url);
      const killedAt = Date.now();
      first.kill("SIGKILL");
      expect((await within(first.exited, 10_000, "the killed broker to exit")).signal).toBe(
        "SIGKILL",
      );
      const servedAt = await load.waitForSendAfter(killedAt, PHASE_MS);
      const acknowledgedAtKill = load.acknowledged.size;
      await load.waitFor(
        () => load.acknowledged.size >= acknowledgedAtKill + 300,
        PHASE_MS,
        "300 more sends through the other broker",
      );
      const result = await load.finish(2 * PHASE_MS);
      console.info(
        `broker kill: first send through ${second.url} acknowledged ${servedAt - killedAt} ms ` +
          `after the kill; longest pause in the run ${result.longestPause.ms} ms; ` +
          `${result.acknowledgedSends} sends acknowledged, ${result.completions} completions, ` +
          `${result.unknownCompletions} of unknown outcome, ${result.redeliveries} redeliveries, ` +
          `${result.duplicateCompletions.length} completed again; send failures ` +
          `${JSON.stringify(result.sendFailures)}; processor errors ` +
          `${JSON.stringify(result.processorErrors)}`,
      );
      expect(failovers.map(({ from, to }) => ({ from, to }))).toEqual([
        { from: first.url, to: second.url },
      ]);
      expect(result.acknowledgedSends).toBeGreaterThanOrEqual(1_000);
      expect(violations(result)).toEqual(NO_VIOLATIONS);
    } finally {
      await load.abort();
      await sdk.deleteQueue(queue).catch(() => undefined);
    }
  });
});
