/**
 * `npm run bench`: starts a nats-server (temporary store, monitoring on) and the broker as
 * a child process on it, drives the broker over gRPC from this process through its
 * scenarios, prints a table and writes the figures to bench/results/<ISO time>.json and
 * bench/results/latest.json. Every scenario has a time limit; the run stops by itself.
 * With --peers it also runs scenario 2's job on a RabbitMQ node of its own.
 */
import { setMaxListeners } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { acceptNextScenario } from "./scenarios/accept-next.js";
import { cliStart } from "./scenarios/cli-start.js";
import { heldSessions } from "./scenarios/held-sessions.js";
import { latency, latencyUnary } from "./scenarios/latency.js";
import { rabbitmqPeer } from "./scenarios/rabbitmq-peer.js";
import { rawJetStream } from "./scenarios/raw-jetstream.js";
import { replication } from "./scenarios/replication.js";
import { rpcFloor } from "./scenarios/rpc-floor.js";
import { sessionState } from "./scenarios/session-state.js";
import { sessionThroughput } from "./scenarios/session-throughput.js";
import { describeMachine, describeVersions } from "./support/environment.js";
import {
  type BenchBroker,
  type BenchNats,
  buildBroker,
  projectRoot,
  startBenchBroker,
  startBenchNats,
} from "./support/processes.js";
import {
  formatReport,
  type Report,
  type ScenarioOutcome,
  scenariosJson,
  writeReport,
} from "./support/report.js";
import { snapshot, usedSince } from "./support/resources.js";
import type { Scenario } from "./support/scenario.js";
import { PRESETS, type Scale, type Sizes } from "./support/sizes.js";
import { round } from "./support/stats.js";
import { type FiguresById, judgeTargets } from "./support/targets.js";

/**
 * In the order they run. Held sessions and the RPC floor come last, each on a broker of its
 * own: held sessions' memory figures must not inherit the heap that earlier scenarios grew,
 * and nothing left over from them may run beside the RPC floor's calls. Replication runs its
 * own cluster and brokers. The CLI's start
 * time asks no broker; it runs after them, when nothing else runs.
 */
const SCENARIOS: Scenario[] = [
  rawJetStream,
  sessionThroughput,
  latency,
  latencyUnary,
  acceptNextScenario,
  sessionState,
  replication,
  heldSessions,
  rpcFloor,
  cliStart,
];
/** Other systems doing a scenario's job (--peers): each runs right after the scenario it copies. */
const PEERS: { after: string; scenario: Scenario }[] = [
  { after: sessionThroughput.id, scenario: rabbitmqPeer },
];
/** A scenario that ignores its abort this long after its time limit is abandoned. */
const ABORT_GRACE_MS = 30_000;

interface RunOptions {
  scale: Scale;
  sizes: Sizes;
  outDir: string;
  scenarios: Scenario[];
  /** --peers: the peer scenarios are among `scenarios`. */
  peers: boolean;
  /** Directory for `node --cpu-prof` profiles of the broker. */
  profileDir: string | undefined;
  /** Extra node flags for the broker, e.g. V8 heap settings to compare. */
  brokerNodeArgs: string[];
}

const kebab = (key: string) => key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
const SIZE_KEYS = Object.keys(PRESETS.default) as (keyof Sizes)[];

function usage(): string {
  const sizeLines = SIZE_KEYS.map(
    (key) =>
      `  --${kebab(key)} N`.padEnd(30) +
      `default ${PRESETS.default[key]}, full ${PRESETS.full[key]}, tiny ${PRESETS.tiny[key]}`,
  );
  return [
    "Usage: npm run bench -- [options]",
    "",
    "  --scale tiny|default|full   preset sizes (default: default; full is issue 6's size)",
    "  --tiny                      same as --scale tiny (a few seconds per scenario)",
    "  --out DIR                   where the JSON goes (default: bench/results)",
    `  --only IDS                  comma-separated scenarios: ${SCENARIOS.map((s) => s.id).join(", ")}`,
    "  --peers                     also run the peers (not by default): scenario 2's job on RabbitMQ",
    "                              (installs Debian's rabbitmq-server if missing; see docs/performance.md)",
    "  --profile-broker DIR        run the broker with node --cpu-prof, profiles in DIR",
    "  --broker-node-args FLAGS    extra node flags for the broker (space-separated)",
    "",
    "Sizes (override the preset):",
    ...sizeLines,
  ].join("\n");
}

function parseOptions(argv: string[]): RunOptions {
  const sizeOptions = Object.fromEntries(
    SIZE_KEYS.map((key) => [kebab(key), { type: "string" as const }]),
  );
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      scale: { type: "string" },
      tiny: { type: "boolean" },
      out: { type: "string" },
      only: { type: "string" },
      peers: { type: "boolean" },
      "profile-broker": { type: "string" },
      "broker-node-args": { type: "string" },
      help: { type: "boolean", short: "h" },
      ...sizeOptions,
    },
  });
  if (values.help) {
    console.log(usage());
    process.exit(0);
  }
  const scale = (values.tiny ? "tiny" : (values.scale ?? "default")) as Scale;
  if (!(scale in PRESETS)) throw new Error(`--scale must be tiny, default or full, not "${scale}"`);
  const sizes: Sizes = { ...PRESETS[scale] };
  const given = values as Record<string, unknown>;
  for (const key of SIZE_KEYS) {
    const raw = given[kebab(key)];
    if (raw === undefined) continue;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`--${kebab(key)} must be a whole number ≥ 1, not "${String(raw)}"`);
    }
    sizes[key] = value;
  }
  if (sizes.idleLarge <= sizes.idleSmall) throw new Error("--idle-large must exceed --idle-small");
  const only = values.only?.split(",").map((id) => id.trim());
  const unknown = only?.filter((id) => !SCENARIOS.some((scenario) => scenario.id === id)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown scenario(s): ${unknown.join(", ")}`);
  const chosen = only ? SCENARIOS.filter((scenario) => only.includes(scenario.id)) : SCENARIOS;
  const peers = values.peers === true;
  return {
    scale,
    sizes,
    outDir: resolve(values.out ?? join(projectRoot, "bench", "results")),
    scenarios: peers ? withPeers(chosen) : chosen,
    peers,
    profileDir:
      values["profile-broker"] === undefined ? undefined : resolve(values["profile-broker"]),
    brokerNodeArgs: (values["broker-node-args"] ?? "").split(" ").filter((a) => a !== ""),
  };
}

/** --peers adds every peer, whatever --only says: after the scenario it copies, else last. */
function withPeers(chosen: Scenario[]): Scenario[] {
  const peersAfter = (id: string) =>
    PEERS.filter((peer) => peer.after === id).map((peer) => peer.scenario);
  const orphans = PEERS.filter((peer) => !chosen.some((scenario) => scenario.id === peer.after));
  return [
    ...chosen.flatMap((scenario) => [scenario, ...peersAfter(scenario.id)]),
    ...orphans.map((peer) => peer.scenario),
  ];
}

/** Counts each distinct problem; the report lists them with their counts. */
class ProblemLog {
  private readonly counts = new Map<string, number>();

  add = (line: string): void => {
    const count = this.counts.get(line) ?? 0;
    if (count === 0) console.error(`  problem: ${line}`);
    this.counts.set(line, count + 1);
  };

  list(): string[] {
    return [...this.counts].map(([line, count]) => (count === 1 ? line : `${line} (×${count})`));
  }
}

async function runScenario(
  scenario: Scenario,
  options: RunOptions,
  nats: BenchNats,
  broker: BenchBroker,
  problems: ProblemLog,
): Promise<ScenarioOutcome> {
  const limitMs = scenario.timeoutMs(options.sizes);
  console.error(`${scenario.title} (time limit ${Math.round(limitMs / 1000)} s)`);
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  const limit = setTimeout(() => controller.abort(), limitMs);
  let giveUp: NodeJS.Timeout | undefined;
  const watched = { brokerPid: broker.pid, natsPid: nats.pid, monitorUrl: nats.monitorUrl };
  const before = await snapshot(watched);
  try {
    const abandoned = new Promise<never>((_, reject) => {
      giveUp = setTimeout(
        () => reject(new Error(`did not stop within ${ABORT_GRACE_MS / 1000} s of its time limit`)),
        limitMs + ABORT_GRACE_MS,
      );
    });
    const figures = await Promise.race([
      scenario.run({
        sizes: options.sizes,
        natsUrl: nats.url,
        brokerUrl: broker.url,
        brokerPid: broker.pid,
        natsPid: nats.pid,
        brokerMemoryAfterGc: () => broker.memoryAfterGc(),
        signal: controller.signal,
        log: (line) => console.error(`  ${line}`),
        problem: (line) => problems.add(`${scenario.id}: ${line}`),
      }),
      abandoned,
    ]);
    if (controller.signal.aborted) {
      problems.add(`${scenario.id}: hit its time limit of ${Math.round(limitMs / 1000)} s`);
    }
    const resources = await usedSince(before, watched);
    return { id: scenario.id, title: scenario.title, figures, resources };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    problems.add(`${scenario.id}: failed: ${message}`);
    return { id: scenario.id, title: scenario.title, error: message };
  } finally {
    clearTimeout(limit);
    clearTimeout(giveUp);
  }
}

/** The broker processes of a run: one, plus one per scenario that wants a fresh broker. */
class Brokers {
  current: BenchBroker | undefined;
  readonly ended: Report["brokers"] = [];

  constructor(
    private readonly natsUrl: string,
    private readonly nodeArgs: string[],
    private readonly problems: ProblemLog,
  ) {}

  async start(): Promise<BenchBroker> {
    await this.stop();
    this.current = await startBenchBroker({ natsUrl: this.natsUrl, nodeArgs: this.nodeArgs });
    console.error(`bench: broker ${this.current.url} (pid ${this.current.pid})`);
    return this.current;
  }

  async stop(): Promise<void> {
    const broker = this.current;
    if (!broker) return;
    this.current = undefined;
    const crashed = broker.exit();
    if (crashed)
      this.problems.add(`broker ${broker.pid} exited during the run: ${JSON.stringify(crashed)}`);
    const exit = await broker.stop();
    const stderr = broker.stderrSummary();
    for (const entry of stderr) {
      this.problems.add(
        `broker stderr or log: ${entry.line}${entry.count > 1 ? ` (×${entry.count})` : ""}`,
      );
    }
    this.ended.push({ pid: broker.pid, exitCode: exit.code, exitSignal: exit.signal, stderr });
  }
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const machine = describeMachine();
  const problems = new ProblemLog();
  const outcomes: ScenarioOutcome[] = [];
  const storeDir = await mkdtemp(join(tmpdir(), "sessionbus-bench-"));
  let nats: BenchNats | undefined;
  let brokers: Brokers | undefined;
  try {
    await buildBroker();
    nats = await startBenchNats(storeDir);
    console.error(`bench: scale ${options.scale}; nats-server ${nats.url} (pid ${nats.pid})`);
    brokers = new Brokers(
      nats.url,
      [
        "--trace-warnings",
        ...(options.profileDir ? ["--cpu-prof", "--cpu-prof-dir", options.profileDir] : []),
        ...options.brokerNodeArgs,
      ],
      problems,
    );
    let broker = await brokers.start();
    let used = false;
    for (const scenario of options.scenarios) {
      if ((scenario.freshBroker && used) || broker.exit() !== undefined) {
        broker = await brokers.start();
      }
      outcomes.push(await runScenario(scenario, options, nats, broker, problems));
      used = true;
    }
  } finally {
    await brokers?.stop();
    await nats?.stop();
    await rm(storeDir, { recursive: true, force: true });
  }

  const figuresById: FiguresById = Object.fromEntries(
    outcomes.map((outcome) => [outcome.id, outcome.figures]),
  );
  const raw = figuresById.rawJetStream?.get("msgsPerSec");
  const throughput = figuresById.sessionThroughput;
  if (throughput && raw !== undefined) {
    throughput.add(
      "ratioToRaw",
      round(throughput.get("msgsPerSec") / raw),
      "×",
      "ratio to scenario 1",
    );
  }
  const rabbitmq = figuresById[rabbitmqPeer.id];
  if (throughput && rabbitmq) {
    throughput
      .add(
        "ratioToRabbitmq",
        round(throughput.get("msgsPerSec") / rabbitmq.get("msgsPerSec")),
        "×",
        "ratio to RabbitMQ (msgs/s)",
      )
      .add(
        "cpuRatioToRabbitmq",
        round(throughput.get("cpuMsPerMsg") / rabbitmq.get("cpuMsPerMsg")),
        "×",
        "CPU per message, ratio to RabbitMQ",
      );
  }
  const targets = judgeTargets(figuresById, options.sizes);
  const finishedAt = new Date();
  const report: Report = {
    benchmark: "sessionbus",
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: round((finishedAt.getTime() - startedAt.getTime()) / 1000, 1),
    scale: options.scale,
    sizes: options.sizes,
    machine,
    versions: await describeVersions(options.peers),
    scenarios: scenariosJson(outcomes),
    targets,
    problems: problems.list(),
    brokers: brokers?.ended ?? [],
  };
  const path = await writeReport(options.outDir, report);
  console.log(formatReport(outcomes, targets));
  if (report.problems.length > 0) {
    console.log(`\nProblems:\n${report.problems.map((p) => `- ${p}`).join("\n")}`);
  }
  console.log(`\nResults: ${path} (and latest.json), ${report.durationSeconds} s`);
  return outcomes.every((outcome) => outcome.figures !== undefined) ? 0 : 1;
}

// Ctrl-C: exit through the "exit" hooks, which kill the broker and nats-server children.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}, stopping`);
    process.exit(130);
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
