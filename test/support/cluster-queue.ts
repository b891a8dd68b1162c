/** A session queue for the cluster failure tests, and the name of its message stream. */
import { readFile } from "node:fs/promises";
import { createSessionBusClient, type SessionBusClient } from "../../src/client/index.js";
import { type BrokerProcess, startBrokerProcess } from "./broker-process.js";
import { type NatsCluster, startNatsCluster } from "./nats-cluster.js";
import type { SessionLoad } from "./session-load.js";
import { testConnectionString } from "./test-credentials.js";

/** Short, so that sessions whose lock was lost in a failure come back soon. */
export const CLUSTER_TEST_LOCK_MS = 5_000;

/** A 3-node cluster, a broker process on it with 3 replicas, and an SDK client of it. */
export interface ClusterBroker {
  cluster: NatsCluster;
  broker: BrokerProcess;
  sdk: SessionBusClient;
  /**
   * What to print when a test fails: the last lines of each nats-server's log and of the
   * broker's output (a stall leaves no other trace once the cluster's directory is gone),
   * and, given the queue's message stream, what JetStream holds for it (see storeStatus).
   */
  lastOutput(stream?: string): Promise<string>;
  stop(): Promise<void>;
}

/** Lines of each log lastOutput prints. */
const LAST_LINES = 40;

export async function startClusterBroker(): Promise<ClusterBroker> {
  const cluster = await startNatsCluster();
  let broker: BrokerProcess;
  try {
    broker = await startBrokerProcess({ env: cluster.brokerEnv(3) });
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  const sdk = createSessionBusClient({ connectionString: testConnectionString(broker.url) });
  return {
    cluster,
    broker,
    sdk,
    async lastOutput(stream) {
      const parts = await Promise.all(
        cluster.nodes.map(async (node) => {
          const log = await readFile(node.logFile, "utf8").catch((e: Error) => e.message);
          return `${node.name} (${node.logFile}):\n${log.split("\n").slice(-LAST_LINES).join("\n")}`;
        }),
      );
      const store = stream ? [await storeStatus(cluster, stream)] : [];
      return [...parts, `broker:\n${broker.output()}`, ...store].join("\n");
    },
    async stop() {
      await sdk.close();
      await broker.stop();
      await cluster.stop();
    },
  };
}

/**
 * What JetStream holds for a session queue, to tell a stall's cause: the message stream,
 * the accept-next index (`SBX_`, see src/store/session-index.ts) and its consumer, and the
 * session consumers with messages pending or in flight.
 */
async function storeStatus(cluster: NatsCluster, stream: string): Promise<string> {
  const lines: string[] = [];
  const attempt = async (what: string, read: () => Promise<string>) => {
    lines.push(await read().catch((error: Error) => `${what}: ${error.message}`));
  };
  const jsm = await cluster.jsm();
  const indexStream = `SBX_${stream.slice("SB_".length)}`;
  const leaders = (info: {
    cluster?: { leader?: string; replicas?: { name: string; current: boolean; lag?: number }[] };
  }) =>
    `leader ${info.cluster?.leader ?? "none"}, replicas ${(info.cluster?.replicas ?? []).map((r) => `${r.name}${r.current ? "" : " (behind)"} lag ${r.lag ?? 0}`).join(", ")}`;
  await attempt(stream, async () => {
    const info = await jsm.streams.info(stream);
    return `${stream}: ${info.state.messages} messages, seq ${info.state.first_seq}–${info.state.last_seq}, ${info.state.consumer_count} consumers; ${leaders(info)}`;
  });
  await attempt(indexStream, async () => {
    const info = await jsm.streams.info(indexStream);
    return `${indexStream}: ${info.state.messages} entries, seq ${info.state.first_seq}–${info.state.last_seq}; ${leaders(info)}`;
  });
  await attempt("acceptors", async () => {
    const info = await jsm.consumers.info(indexStream, "acceptors");
    return `acceptors: ${info.num_pending} pending, ${info.num_ack_pending} ack pending, ${info.num_waiting} waiting pulls, ${info.num_redelivered} redelivered, delivered through ${info.delivered.stream_seq}, ack floor ${info.ack_floor.stream_seq}; ${leaders(info)}`;
  });
  await attempt("session consumers", async () => {
    const busy: string[] = [];
    let count = 0;
    for await (const info of jsm.consumers.list(stream)) {
      count++;
      if (info.num_pending > 0 || info.num_ack_pending > 0 || info.num_waiting > 0) {
        busy.push(
          `${info.name.slice(0, 16)} ${info.num_pending} pending, ${info.num_ack_pending} ack pending, ${info.num_waiting} waiting (${info.cluster?.leader ?? "no leader"})`,
        );
      }
    }
    return `${count} consumers on ${stream}; with work: ${busy.join("; ")}`;
  });
  return `JetStream:\n${lines.join("\n")}`;
}

/**
 * Creates a session queue with duplicate detection (what test/support/session-load.ts
 * needs) and returns its message stream: the `SB_` stream the creation added, not its
 * dead-letter one.
 */
export async function createSessionQueueStream(
  cluster: NatsCluster,
  client: SessionBusClient,
  queue: string,
): Promise<string> {
  const jsm = await cluster.jsm();
  const names = async () => {
    const found = new Set<string>();
    for await (const name of jsm.streams.names()) found.add(name);
    return found;
  };
  const before = await names();
  await client.createQueue(queue, {
    requiresSession: true,
    lockDurationMs: CLUSTER_TEST_LOCK_MS,
    requiresDuplicateDetection: true,
  });
  const added = [...(await names())].filter(
    (name) => !before.has(name) && name.startsWith("SB_") && !name.endsWith("-dlq"),
  );
  if (added.length !== 1) throw new Error(`expected one new message stream, found ${added}`);
  return added[0] as string;
}

/**
 * The steps of a cluster test with the load's counts at each, printed with the result (and
 * on a failure, to show which step a bound ran out in).
 */
export class Timeline {
  private readonly started = Date.now();
  private readonly steps: string[] = [];

  constructor(private readonly load: Pick<SessionLoad, "acknowledged" | "completed">) {}

  mark(step: string): void {
    this.steps.push(
      `${Date.now() - this.started} ms ${step} (${this.load.acknowledged.size} sent, ${this.load.completed.size} completed)`,
    );
  }

  toString(): string {
    return this.steps.join("; ");
  }
}
