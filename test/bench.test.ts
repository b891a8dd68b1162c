/**
 * `npm run bench` at a tiny size (`--tiny`), run as a child process the way a developer
 * runs it: it must finish on its own and write a JSON result with every figure present and
 * numeric. How fast anything is, is not checked here.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
/** The child is killed after this; the tiny run takes some 75 s (more on a busy machine). */
const RUN_TIMEOUT_MS = 300_000;

/** Figures every scenario must report (more may come). */
const EXPECTED: Record<string, string[]> = {
  rawJetStream: ["messages", "msgsPerSec", "latencyP50Ms", "latencyP99Ms"],
  sessionThroughput: [
    "messages",
    "msgsPerSec",
    "sendMsgsPerSec",
    "ratioToRaw",
    "verifiedMessages",
    "cpuMsPerMsg",
  ],
  latency: ["messages", "achievedRate", "p50Ms", "p99Ms", "p999Ms", "lowRateP99Ms"],
  latencyUnary: ["messages", "achievedRate", "p50Ms", "p99Ms", "p999Ms", "lowRateP99Ms"],
  acceptNext: [
    "wakeupP50Ms",
    "wakeupP99Ms",
    "setupSmallSeconds",
    "acceptSmallP50Ms",
    "acceptSmallP99Ms",
    "setupLargeSeconds",
    "acceptLargeP50Ms",
    "acceptLargeP99Ms",
    "acceptRatioP50",
  ],
  sessionState: ["setP50Ms", "setP99Ms", "getP50Ms", "getP99Ms", "largeSetMBps", "largeGetMBps"],
  heldSessions: [
    "held",
    "rssBeforeMiB",
    "rssHeldMiB",
    "perHeldSessionKiB",
    "heldExtrapolated10kMiB",
    "rssReceivingMiB",
    "perStreamKiB",
  ],
  rpcFloor: [
    "calls",
    "bareHealthCpuUs",
    "brokerHealthCpuUs",
    "brokerGetQueueCpuUs",
    "healthRatio",
    "getQueueRatio",
    "getQueueNatsCpuUs",
  ],
  cliStart: ["runs", "helpP50Ms", "helpMaxMs"],
  replication: [
    "r1MsgsPerSec",
    "r1VerifiedMessages",
    "r1P99Ms",
    "r3MsgsPerSec",
    "r3VerifiedMessages",
    "r3P99Ms",
    "throughputRatioR3",
    "p99RatioR3",
  ],
};
const TARGETS = [
  "throughputRatio",
  "rabbitmqRatio",
  "latencyP99",
  "latencyUnaryP99",
  "wakeupP99",
  "acceptScaling",
  "heldRss",
  "stateP99",
  "rpcFloor",
  "authCost",
  "cliStart",
];

interface BenchResult {
  scale: string;
  machine: { os: string; cpus: number; memoryBytes: number };
  versions: { node: string; natsServer: string; packages: Record<string, string> };
  scenarios: Record<
    string,
    { figures?: Record<string, unknown>; resources?: Record<string, unknown>; error?: string }
  >;
  targets: { id: string; value: unknown; met: unknown }[];
}

const outDir = mkdtempSync(join(tmpdir(), "sessionbus-bench-test-"));

afterAll(() => {
  rmSync(outDir, { recursive: true, force: true });
});

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts", ...args], {
      cwd: projectRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function expectNumbers(where: string, values: Record<string, unknown> | undefined): void {
  expect(values, `${where} is missing`).toBeDefined();
  for (const [key, value] of Object.entries(values ?? {})) {
    expect(typeof value === "number" && Number.isFinite(value), `${where}.${key} = ${value}`).toBe(
      true,
    );
  }
}

describe("npm run bench --tiny", () => {
  it(
    "runs every scenario and writes a JSON result with every figure numeric",
    async () => {
      const { code, output } = await runBench(["--tiny", "--out", outDir]);
      expect(code, output).toBe(0);
      expect(output).toContain("broker CPU per call ≤ 1.5 × a bare grpc-js server");

      const files = readdirSync(outDir).sort();
      expect(files).toContain("latest.json");
      const stamped = files.filter((file) => /^\d{4}-\d\d-\d\dT[\d-]+\.\d+Z\.json$/.test(file));
      expect(stamped, files.join(", ")).toHaveLength(1);
      const result = JSON.parse(readFileSync(join(outDir, "latest.json"), "utf8")) as BenchResult;
      expect(readFileSync(join(outDir, stamped[0] as string), "utf8")).toBe(
        readFileSync(join(outDir, "latest.json"), "utf8"),
      );

      expect(result.scale).toBe("tiny");
      expect(result.machine.cpus).toBeGreaterThan(0);
      expect(result.machine.memoryBytes).toBeGreaterThan(0);
      expect(result.machine.os).not.toBe("");
      expect(result.versions.node).toBe(process.version);
      expect(result.versions.natsServer).toMatch(/v2\.\d+\.\d+/);
      expect(result.versions.packages["@nats-io/jetstream"]).toMatch(/^\d+\.\d+\.\d+/);

      expect(Object.keys(result.scenarios).sort()).toEqual(Object.keys(EXPECTED).sort());
      for (const [id, keys] of Object.entries(EXPECTED)) {
        const scenario = result.scenarios[id];
        expect(scenario?.error, `${id} failed`).toBeUndefined();
        expectNumbers(`${id}.figures`, scenario?.figures);
        expectNumbers(`${id}.resources`, scenario?.resources);
        for (const key of keys) expect(scenario?.figures, id).toHaveProperty(key);
      }

      // Scenario 2 checks per-session order and exactly-once completion of every message.
      const throughput = result.scenarios.sessionThroughput?.figures;
      expect(throughput?.verifiedMessages).toBe(throughput?.messages);

      expect(result.targets.map((target) => target.id)).toEqual(TARGETS);
      for (const target of result.targets) {
        if (target.id === "rabbitmqRatio") {
          // The RabbitMQ peer runs with --peers only: npm test does not need RabbitMQ.
          expect(target.met, "rabbitmqRatio without --peers").toBeNull();
          continue;
        }
        expect(typeof target.met, `target ${target.id}`).toBe("boolean");
        expect(Number.isFinite(target.value), `target ${target.id}`).toBe(true);
      }
    },
    RUN_TIMEOUT_MS + 10_000,
  );
});
