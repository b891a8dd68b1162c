/** The performance targets of issues 6, 12 and 15, judged from a run's figures. */
import type { Figures } from "./scenario.js";
import type { Sizes } from "./sizes.js";
import { formatNumber } from "./table.js";

export interface TargetResult {
  id: string;
  target: string;
  /** The figure compared with the threshold (NaN when not measured). */
  value: number;
  threshold: number;
  /** The figures behind the verdict, in words. */
  measured: string;
  /** null: the scenario did not run or produced no figure. */
  met: boolean | null;
}

const FULL_HELD_SESSIONS = 10_000;
/** The latency target counts only if the run sent at least this share of 1,000 msgs/s. */
const RATE_REACHED = 0.95;
const MIB = 1024 * 1024;

/** Figures of each scenario by id; a scenario that did not run is absent. */
export type FiguresById = Partial<Record<string, Figures>>;

export function judgeTargets(byId: FiguresById, sizes: Sizes): TargetResult[] {
  const get = (id: string, key: string) => byId[id]?.get(key) ?? Number.NaN;
  const n = formatNumber;
  const results: TargetResult[] = [];
  /** `also`: a further condition, e.g. that the rate the target names was reached. */
  const judge = (result: Omit<TargetResult, "met">, atMost: boolean, also = true) =>
    results.push({
      ...result,
      met: Number.isFinite(result.value)
        ? also && (atMost ? result.value <= result.threshold : result.value >= result.threshold)
        : null,
    });

  const raw = get("rawJetStream", "msgsPerSec");
  const sessions = get("sessionThroughput", "msgsPerSec");
  judge(
    {
      id: "throughputRatio",
      target: "session throughput ≥ 50 % of raw JetStream",
      value: get("sessionThroughput", "ratioToRaw"),
      threshold: 0.5,
      measured: `${n(get("sessionThroughput", "ratioToRaw") * 100)} % (${n(sessions)} vs ${n(raw)} msgs/s)`,
    },
    false,
  );

  const rabbitmq = get("rabbitmq", "msgsPerSec");
  judge(
    {
      id: "rabbitmqRatio",
      target: "session throughput ≥ 50 % of RabbitMQ",
      value: get("sessionThroughput", "ratioToRabbitmq"),
      threshold: 0.5,
      measured: Number.isFinite(rabbitmq)
        ? `${n(get("sessionThroughput", "ratioToRabbitmq") * 100)} % (${n(sessions)} vs ${n(rabbitmq)} msgs/s); CPU per message ${n(get("sessionThroughput", "cpuMsPerMsg"))} vs ${n(get("rabbitmq", "cpuMsPerMsg"))} ms`
        : "RabbitMQ not run (npm run bench -- --peers)",
    },
    false,
  );

  const rate = get("latency", "achievedRate");
  const rateReached = rate >= RATE_REACHED * 1_000;
  judge(
    {
      id: "latencyP99",
      target: "send → delivery p99 ≤ 10 ms at 1,000 msgs/s",
      value: get("latency", "p99Ms"),
      threshold: 10,
      measured: `streams: p99 ${n(get("latency", "p99Ms"))} ms at ${n(rate)} msgs/s achieved of ${n(sizes.latencyRate)} (p50 ${n(get("latency", "p50Ms"))}, p999 ${n(get("latency", "p999Ms"))})${rateReached ? "" : "; 1,000 msgs/s not reached"}; at ${n(get("latency", "lowRate"))} msgs/s: p99 ${n(get("latency", "lowRateP99Ms"))} ms`,
    },
    true,
    rateReached,
  );

  const unaryRate = get("latencyUnary", "achievedRate");
  const unaryRateReached = unaryRate >= RATE_REACHED * 1_000;
  judge(
    {
      id: "latencyUnaryP99",
      target:
        "3b (a Send and a Settle call per message) 1,000 msgs/s with send → delivery p99 ≤ 20 ms",
      value: get("latencyUnary", "p99Ms"),
      threshold: 20,
      measured: `p99 ${n(get("latencyUnary", "p99Ms"))} ms at ${n(unaryRate)} msgs/s achieved of ${n(sizes.latencyRate)} (p50 ${n(get("latencyUnary", "p50Ms"))}, p999 ${n(get("latencyUnary", "p999Ms"))})${unaryRateReached ? "" : "; 1,000 msgs/s not reached"}`,
    },
    true,
    unaryRateReached,
  );

  judge(
    {
      id: "wakeupP99",
      target: "accept-next wake-up p99 ≤ 20 ms",
      value: get("acceptNext", "wakeupP99Ms"),
      threshold: 20,
      measured: `p99 ${n(get("acceptNext", "wakeupP99Ms"))} ms (p50 ${n(get("acceptNext", "wakeupP50Ms"))})`,
    },
    true,
  );

  judge(
    {
      id: "acceptScaling",
      target: "accept-next latency at the large idle count ≤ 2 × at 1,000 (p50)",
      value: get("acceptNext", "acceptRatioP50"),
      threshold: 2,
      measured: `${n(get("acceptNext", "acceptRatioP50"))} × (p50 ${n(get("acceptNext", "acceptLargeP50Ms"))} ms with ${n(sizes.idleLarge)} idle vs ${n(get("acceptNext", "acceptSmallP50Ms"))} ms with ${n(sizes.idleSmall)}; p99 ratio ${n(get("acceptNext", "acceptRatioP99"))} ×)`,
    },
    true,
  );

  // Held = accepted and locked; the figure with a receive stream on each is reported along.
  const held = get("heldSessions", "held");
  const direct = held >= FULL_HELD_SESSIONS;
  const heldMB = (mib: number) => n((mib * MIB) / 1e6);
  const rssMiB = direct
    ? get("heldSessions", "rssHeldMiB")
    : get("heldSessions", "heldExtrapolated10kMiB");
  const streams = get("heldSessions", "receiving");
  const receiving =
    streams >= FULL_HELD_SESSIONS
      ? `${heldMB(get("heldSessions", "rssReceivingMiB"))} MB measured`
      : `${heldMB(get("heldSessions", "extrapolated10kMiB"))} MB extrapolated from ${n(streams)} streams (${n(get("heldSessions", "perStreamKiB"))} KiB each)`;
  judge(
    {
      id: "heldRss",
      target: "broker RSS ≤ 200 MB with 10,000 sessions held",
      value: (rssMiB * MIB) / 1e6,
      threshold: 200,
      measured: `${
        direct
          ? `${heldMB(rssMiB)} MB measured with ${n(held)} sessions held`
          : `${heldMB(rssMiB)} MB EXTRAPOLATED from ${n(held)} held (${n(get("heldSessions", "perHeldSessionKiB"))} KiB each over a ${n(get("heldSessions", "rssBeforeMiB"))} MiB base); not measured at 10,000`
      }; with a receive stream on each as well: ${receiving}`,
    },
    true,
  );

  const stateP99 = Math.max(get("sessionState", "getP99Ms"), get("sessionState", "setP99Ms"));
  judge(
    {
      id: "stateP99",
      target: "4 KiB session state get and set p99 ≤ 5 ms",
      value: stateP99,
      threshold: 5,
      measured: `get p99 ${n(get("sessionState", "getP99Ms"))} ms, set p99 ${n(get("sessionState", "setP99Ms"))} ms`,
    },
    true,
  );

  // The worse of the two ratios decides; both are printed.
  const healthRatio = get("rpcFloor", "healthRatio");
  const getQueueRatio = get("rpcFloor", "getQueueRatio");
  judge(
    {
      id: "rpcFloor",
      target:
        "rpcFloor: broker CPU per call ≤ 1.5 × a bare grpc-js server (Health/Check and GetQueue)",
      value: Math.max(healthRatio, getQueueRatio),
      threshold: 1.5,
      measured: `Health/Check ${n(healthRatio)} × (${n(get("rpcFloor", "brokerHealthCpuUs"))} vs ${n(get("rpcFloor", "bareHealthCpuUs"))} µs), GetQueue ${n(getQueueRatio)} × (${n(get("rpcFloor", "brokerGetQueueCpuUs"))} µs); ${n(get("rpcFloor", "calls"))} calls each, ${n(get("rpcFloor", "inFlight"))} in flight`,
    },
    true,
  );
  judge(
    {
      id: "authCost",
      target: "token verification ≤ 5 % of the broker's CPU per call (GetQueue, auth on vs off)",
      value: get("rpcFloor", "authCostPct"),
      threshold: 5,
      measured: `${n(get("rpcFloor", "authCostPct"))} % (${n(get("rpcFloor", "brokerGetQueueCpuUs"))} µs with tokens, ${n(get("rpcFloor", "authOffGetQueueCpuUs"))} µs with SESSIONBUS_AUTH=off)`,
    },
    true,
  );
  judge(
    {
      id: "cliStart",
      target: "sessionbus --help answers in ≤ 300 ms (median, spawn to exit)",
      value: get("cliStart", "helpP50Ms"),
      threshold: 300,
      measured: `median ${n(get("cliStart", "helpP50Ms"))} ms, slowest ${n(get("cliStart", "helpMaxMs"))} ms of ${n(get("cliStart", "runs"))} runs`,
    },
    true,
  );
  return results;
}
