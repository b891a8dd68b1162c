/**
 * Scenario 8 — CLI start: how long `sessionbus --help` takes from spawn to exit, as a user
 * runs it (`node bin/sessionbus.mjs`, which runs the compiled dist/). No broker is asked:
 * the figure is Node's own start, the launcher's check that dist/ is current, and loading
 * the CLI's entry and help. `cliRuns` runs one after another, after one unmeasured run (the
 * first may compile dist/, and fills the file cache).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { projectRoot } from "../support/processes.js";
import { Figures, type Scenario } from "../support/scenario.js";
import { summarize } from "../support/stats.js";

const LAUNCHER = join(projectRoot, "bin/sessionbus.mjs");
/** The first run may compile dist/ (tens of seconds on a busy machine). */
const FIRST_RUN_TIMEOUT_MS = 240_000;
const RUN_TIMEOUT_MS = 30_000;

export const cliStart: Scenario = {
  id: "cliStart",
  title: "8. CLI start (sessionbus --help, spawn to exit)",
  timeoutMs: (sizes) => FIRST_RUN_TIMEOUT_MS + sizes.cliRuns * RUN_TIMEOUT_MS,
  run: async (context) => {
    await helpRun(FIRST_RUN_TIMEOUT_MS, context.signal);
    const samples: number[] = [];
    for (let i = 0; i < context.sizes.cliRuns && !context.signal.aborted; i++) {
      samples.push(await helpRun(RUN_TIMEOUT_MS, context.signal));
    }
    const summary = summarize(samples);
    return new Figures()
      .add("runs", summary.count, "", "runs")
      .add("helpP50Ms", summary.p50, "ms", "sessionbus --help, median")
      .add("helpMaxMs", summary.max, "ms", "sessionbus --help, slowest");
  },
};

/** Runs `sessionbus --help` once; resolves with its wall time in milliseconds. */
function helpRun(timeoutMs: number, signal: AbortSignal): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, [LAUNCHER, "--help"], {
    cwd: projectRoot,
    stdio: ["ignore", "ignore", "pipe"],
    timeout: timeoutMs,
    killSignal: "SIGKILL",
    signal,
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, killed) => {
      const elapsed = performance.now() - started;
      if (code === 0) resolve(elapsed);
      else reject(new Error(`sessionbus --help ended with ${code ?? killed}: ${stderr.trim()}`));
    });
  });
}
