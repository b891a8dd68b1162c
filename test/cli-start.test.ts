/**
 * The CLI starts fast: `sessionbus --help` runs the compiled dist/ (no tsx) and loads neither
 * the SDK nor the broker. Issue 15's target is 300 ms; on an idle machine the median is
 * well under it (docs/performance.md, scenario 8 of the bench). This machine is shared, so
 * the test fails only when the median of five runs passes 1,500 ms, where tsx (a second or
 * more) or a static import of the SDK (about one second) would be, and prints the median.
 */
import { spawn } from "node:child_process";
import {
  appendFileSync,
  cpSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { buildCliIfStale, CLI_BUILD_TIMEOUT_MS } from "./support/cli-build.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const RUNS = 5;
const LIMIT_MS = 1_500;
const RUN_TIMEOUT_MS = 30_000;

interface Run {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

function timedRun(args: string[], root = projectRoot): Promise<Run> {
  const started = performance.now();
  const child = spawn(process.execPath, [join(root, "bin/sessionbus.mjs"), ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    timeout: CLI_BUILD_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) =>
      resolve({ ms: performance.now() - started, code, stdout, stderr }),
    );
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

beforeAll(buildCliIfStale, CLI_BUILD_TIMEOUT_MS);

describe("sessionbus start time", () => {
  for (const args of [["--help"], ["queue", "--help"]]) {
    const line = `sessionbus ${args.join(" ")}`;
    it(
      `answers ${line} from compiled code (median of ${RUNS} runs)`,
      async () => {
        const runs: Run[] = [];
        for (let i = 0; i < RUNS; i++) runs.push(await timedRun(args));
        for (const run of runs) {
          expect(run.code, run.stderr).toBe(0);
          expect(run.stdout).toContain("Usage: sessionbus");
          // Nothing on stderr: no compile, no fallback to tsx.
          expect(run.stderr).toBe("");
        }
        const times = runs.map((run) => Math.round(run.ms));
        const middle = median(times);
        console.log(`${line}: median ${middle} ms of ${times.join(", ")} ms (target 300 ms)`);
        expect(middle).toBeLessThan(LIMIT_MS);
      },
      RUNS * RUN_TIMEOUT_MS,
    );
  }
});

describe("sessionbus launcher in a fresh clone", () => {
  const COMPILING = "sessionbus: compiling src/ into dist/ first";

  it(
    "compiles dist/ on the first run, when an output is gone and after a change, and runs the sources through tsx when they do not compile",
    async () => {
      // What a clone holds that the build and the launcher read; node_modules is shared.
      const clone = mkdtempSync(join(tmpdir(), "sessionbus-clone-"));
      try {
        for (const path of [
          "bin",
          "scripts",
          "src",
          "gen/ts",
          "package.json",
          "tsconfig.json",
          "tsconfig.build.json",
        ]) {
          cpSync(join(projectRoot, path), join(clone, path), { recursive: true });
        }
        symlinkSync(join(projectRoot, "node_modules"), join(clone, "node_modules"));

        const first = await timedRun(["--version"], clone);
        expect(first.code, first.stderr).toBe(0);
        expect(first.stderr).toContain(COMPILING);
        expect(first.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);

        const second = await timedRun(["--version"], clone);
        expect(second.stderr).toBe("");
        expect(second.stdout).toBe(first.stdout);

        // An output removed from dist/ (tsc's incremental state alone would not restore it).
        rmSync(join(clone, "dist/src/cli/main.js"));
        const restored = await timedRun(["--version"], clone);
        expect(restored.code, restored.stderr).toBe(0);
        expect(restored.stderr).toContain(COMPILING);
        expect(restored.stdout).toBe(first.stdout);

        // A change to a source file: compiled again, and the change is in what runs.
        const help = join(clone, "src/cli/help.ts");
        writeFileSync(
          help,
          readFileSync(help, "utf8").replace("command line client", "changed command line client"),
        );
        const changed = await timedRun(["--help"], clone);
        expect(changed.code, changed.stderr).toBe(0);
        expect(changed.stderr).toContain(COMPILING);
        expect(changed.stdout).toContain("sessionbus - changed command line client");

        // Work in progress with a type error: tsc fails, the sources still run.
        appendFileSync(join(clone, "src/cli/help.ts"), '\nexport const broken: number = "text";\n');
        const broken = await timedRun(["--help"], clone);
        expect(broken.code, broken.stderr).toBe(0);
        expect(broken.stdout).toContain("Usage: sessionbus");
        expect(broken.stderr).toContain(
          "could not compile src/ (see above); running it through tsx",
        );
        expect(broken.stderr).toContain("TS2322");
      } finally {
        rmSync(clone, { recursive: true, force: true });
      }
    },
    5 * CLI_BUILD_TIMEOUT_MS,
  );
});
