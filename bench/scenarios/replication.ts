/**
 * Scenario 9 — what replication costs: a 3-node nats-server cluster on this machine (the
 * one `npm run cluster` and the cluster tests start, test/support/nats-cluster.ts), and on
 * it, one after the other, a broker with SESSIONBUS_REPLICAS=1 and one with 3. Each runs
 * scenario 2 (session throughput) at `replicaSessions` × `replicaMessagesPerSession` and
 * scenario 3 (send → delivery latency, streams) at `replicaLatencyRate` for
 * `replicaLatencySeconds`, so the two counts are compared on the same cluster in the same
 * run. The run's own single nats-server is not used. CPU figures of the inner runs are
 * left out: they would count one of the three nats-servers only.
 */
import { startNatsCluster } from "../../test/support/nats-cluster.js";
import { startBenchBroker } from "../support/processes.js";
import { Figures, type Scenario, type ScenarioContext } from "../support/scenario.js";
import { round } from "../support/stats.js";
import { latency } from "./latency.js";
import { sessionThroughput } from "./session-throughput.js";

const COUNTS = [1, 3] as const;
/** Starting the cluster, and each broker (an R3 broker brings the store to three copies). */
const START_BOUND_MS = 120_000;

export const replication: Scenario = {
  id: "replication",
  title: "9. Replication: session throughput and latency with 1 and 3 replicas (3-node cluster)",
  timeoutMs: (sizes) => {
    const inner = { ...sizes, ...innerSizes(sizes) };
    return (
      START_BOUND_MS +
      COUNTS.length *
        (START_BOUND_MS + sessionThroughput.timeoutMs(inner) + latency.timeoutMs(inner))
    );
  },
  run,
};

/** Scenarios 2 and 3 at this scenario's sizes. */
function innerSizes(sizes: ScenarioContext["sizes"]): Partial<ScenarioContext["sizes"]> {
  return {
    sessions: sizes.replicaSessions,
    messagesPerSession: sizes.replicaMessagesPerSession,
    latencyRate: sizes.replicaLatencyRate,
    latencySeconds: sizes.replicaLatencySeconds,
  };
}

async function run(context: ScenarioContext): Promise<Figures> {
  const figures = new Figures();
  context.log("starting a 3-node nats-server cluster");
  const cluster = await startNatsCluster({ startTimeoutMs: START_BOUND_MS });
  try {
    for (const replicas of COUNTS) {
      const starting = Date.now();
      const broker = await startBenchBroker({
        natsUrl: cluster.url,
        env: cluster.brokerEnv(replicas),
        startTimeoutMs: START_BOUND_MS,
      });
      context.log(
        `R${replicas}: broker ${broker.url} (pid ${broker.pid}), listening ${Date.now() - starting} ms after its start`,
      );
      try {
        const inner: ScenarioContext = {
          ...context,
          sizes: { ...context.sizes, ...innerSizes(context.sizes) },
          brokerUrl: broker.url,
          brokerPid: broker.pid,
          natsPid: cluster.nodes[0]?.pid ?? Number.NaN,
          brokerMemoryAfterGc: () => broker.memoryAfterGc(),
          problem: (line) => context.problem(`R${replicas}: ${line}`),
        };
        const throughput = await sessionThroughput.run(inner);
        const delays = await latency.run(inner);
        const r = `r${replicas}`;
        figures
          .add(
            `${r}MsgsPerSec`,
            throughput.get("msgsPerSec"),
            "msgs/s",
            `R${replicas}: session throughput, end to end`,
          )
          .add(
            `${r}SessionsAccepted`,
            throughput.get("sessionsAccepted"),
            "sessions",
            `R${replicas}: sessions accepted`,
          )
          .add(
            `${r}VerifiedMessages`,
            throughput.get("verifiedMessages"),
            "msgs",
            `R${replicas}: completed exactly once, in order`,
          )
          .add(
            `${r}AchievedRate`,
            delays.get("achievedRate"),
            "msgs/s",
            `R${replicas}: latency phase, send rate achieved`,
          )
          .add(`${r}P50Ms`, delays.get("p50Ms"), "ms", `R${replicas}: send → delivery p50`)
          .add(`${r}P99Ms`, delays.get("p99Ms"), "ms", `R${replicas}: send → delivery p99`);
      } finally {
        const exit = await broker.stop();
        if (exit.code !== 0 && exit.code !== null) {
          context.problem(`R${replicas}: broker exited with ${exit.code}`);
        }
      }
    }
  } finally {
    await cluster.stop();
  }
  return figures
    .add(
      "throughputRatioR3",
      round(figures.get("r3MsgsPerSec") / figures.get("r1MsgsPerSec")),
      "×",
      "R3 session throughput, ratio to R1",
    )
    .add(
      "p99RatioR3",
      round(figures.get("r3P99Ms") / figures.get("r1P99Ms")),
      "×",
      "R3 send → delivery p99, ratio to R1",
    );
}
