/**
 * The CLI launcher (bin/sessionbus.mjs) runs the compiled dist/ and compiles it first when it
 * is older than src/. Test files that start the CLI call this in beforeAll, so that the
 * compile (tens of seconds on a busy machine) happens once, before any timed CLI run.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const projectRoot = fileURLToPath(new URL("../..", import.meta.url));
/** The build's own bound: tsc on a busy 2-core machine has taken over a minute. */
export const CLI_BUILD_TIMEOUT_MS = 240_000;

/** `node scripts/build.mjs --if-stale`, without blocking the event loop; rejects on failure. */
export function buildCliIfStale(): Promise<void> {
  const child = spawn(process.execPath, [join(projectRoot, "scripts/build.mjs"), "--if-stale"], {
    cwd: projectRoot,
    stdio: ["ignore", "pipe", "pipe"],
    timeout: CLI_BUILD_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`scripts/build.mjs --if-stale: ${code ?? signal}\n${output}`));
    });
  });
}
