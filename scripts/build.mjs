#!/usr/bin/env node
/**
 * Compiles src/ and gen/ts/ to dist/ (`tsc -p tsconfig.build.json`): what `npm run build`,
 * `npm start`, `npm run setup`, the benchmark and the CLI launcher (bin/sessionbus.mjs) run.
 *
 * dist/.build-stamp is touched with the time each successful build started. dist/ is current
 * when no file or directory under src/ and gen/ts/ (nor a tsconfig) changed after that time,
 * which the launcher checks on every start (a few milliseconds of stat calls). A directory
 * counts too, as adding, removing or renaming a file changes its time when the file's own
 * time stays. Builds take a lock (the directory dist/.build-lock), so that CLI processes
 * started together do not write dist/ at the same time: one builds, the others wait for it.
 *
 * Usage: node scripts/build.mjs [--if-stale]
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file is scripts/build.mjs). */
export const PROJECT_ROOT = fileURLToPath(new URL("..", import.meta.url));

const INPUT_DIRS = ["src", "gen/ts"];
const INPUT_FILES = ["tsconfig.json", "tsconfig.build.json"];
/** What runs from dist/: when one is missing, dist/ is not current whatever the stamp says. */
const OUTPUTS = ["dist/src/main.js", "dist/src/cli/main.js"];
const STAMP = "dist/.build-stamp";
const BUILD_INFO = "dist/.tsbuildinfo";
const LOCK = "dist/.build-lock";
/** How long to wait for another process's build before giving up. */
const LOCK_WAIT_MS = 300_000;
/** A lock older than this was left by a build that died; it is taken over. */
const STALE_LOCK_MS = 600_000;
const POLL_MS = 100;

function mtimeMs(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The latest change time among the build's inputs (files and directories). */
function newestInput(root) {
  let newest = 0;
  for (const file of INPUT_FILES) newest = Math.max(newest, mtimeMs(join(root, file)) ?? 0);
  const visit = (dir) => {
    newest = Math.max(newest, statSync(dir).mtimeMs);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const dir of INPUT_DIRS) {
    if (mtimeMs(join(root, dir)) !== undefined) visit(join(root, dir));
  }
  return newest;
}

function outputsPresent(root) {
  return OUTPUTS.every((file) => mtimeMs(join(root, file)) !== undefined);
}

/** True when dist/ was built after the last change to its inputs. */
export function isBuildCurrent(root = PROJECT_ROOT) {
  const stamp = mtimeMs(join(root, STAMP));
  return stamp !== undefined && outputsPresent(root) && newestInput(root) <= stamp;
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Takes the build lock, waiting for another build to finish. Returns an error message when
 * it cannot: another build held it for LOCK_WAIT_MS, or dist/ is not writable.
 */
function lock(root) {
  const path = join(root, LOCK);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(join(root, "dist"), { recursive: true });
      mkdirSync(path);
      return undefined;
    } catch (error) {
      if (error.code !== "EEXIST") return `cannot take ${LOCK}: ${error.message}`;
    }
    const since = mtimeMs(path);
    if (since !== undefined && Date.now() - since > STALE_LOCK_MS) {
      rmSync(path, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) return `another build held ${LOCK} for too long`;
    sleep(POLL_MS);
  }
}

/**
 * Runs tsc. `output`: "inherit" shows its messages as they come (npm run build); "capture"
 * returns them (the launcher shows them only when the build fails).
 */
function compile(root, output) {
  const tsc = join(root, "node_modules/typescript/bin/tsc");
  const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], {
    cwd: root,
    stdio: output === "inherit" ? "inherit" : ["ignore", "pipe", "pipe"],
    encoding: "utf8",
  });
  const messages = `${result.stdout ?? ""}${result.stderr ?? ""}${result.error ? String(result.error) : ""}`;
  return { ok: result.status === 0, messages };
}

/**
 * Builds dist/ (only when it is not current, with `ifStale`), under the lock. Returns
 * `{ ok, built, messages }`: `ok` when dist/ is current afterwards, `built` when this call
 * ran tsc, `messages` tsc's output when captured.
 */
export function build({ root = PROJECT_ROOT, ifStale = false, output = "inherit" } = {}) {
  if (ifStale && isBuildCurrent(root)) return { ok: true, built: false, messages: "" };
  const refused = lock(root);
  if (refused !== undefined) return { ok: false, built: false, messages: refused };
  try {
    // The build we waited for may have done the work.
    if (ifStale && isBuildCurrent(root)) return { ok: true, built: false, messages: "" };
    // tsc's incremental state says what it emitted before: with outputs deleted since, it
    // would not emit them again.
    if (!outputsPresent(root)) rmSync(join(root, BUILD_INFO), { force: true });
    const started = new Date();
    const { ok, messages } = compile(root, output);
    if (ok) {
      const stamp = join(root, STAMP);
      writeFileSync(stamp, `${started.toISOString()}\n`);
      // Inputs changed while tsc ran are newer than the stamp: the next check builds again.
      utimesSync(stamp, started, started);
    }
    return { ok, built: true, messages };
  } finally {
    rmSync(join(root, LOCK), { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ifStale = process.argv.includes("--if-stale");
  const { ok, built, messages } = build({ ifStale });
  if (ok && !built) console.log("build: dist/ is current");
  if (!ok && !built) console.error(`build: ${messages}`);
  process.exitCode = ok ? 0 : 1;
}
