#!/usr/bin/env node
/**
 * Compiles src/ and gen/ts/ to dist/ (`tsc -p tsconfig.build.json`) and builds the web
 * console (console/, with Vite) into dist/console: what `npm run build`, `npm start`,
 * `npm run setup`, the benchmark and the CLI launcher (bin/sessionbus.mjs) run.
 *
 * dist/.build-stamp is touched with the time each successful build started. dist/ is current
 * when no file or directory under src/ and gen/ts/ (nor a tsconfig) changed after that time,
 * which the launcher checks on every start (a few milliseconds of stat calls). A directory
 * counts too, as adding, removing or renaming a file changes its time when the file's own
 * time stays. Builds take a lock (the directory dist/.build-lock), so that CLI processes
 * started together do not write dist/ at the same time: one builds, the others wait for it.
 *
 * The console has its own stamp, dist/console/.build-stamp, against console/ and gen/ts/:
 * each part is rebuilt only when its own inputs changed.
 *
 * Usage: node scripts/build.mjs [--if-stale] [--console-only]
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

const CONSOLE_INPUT_DIRS = ["console", "gen/ts"];
const CONSOLE_INPUT_FILES = ["package-lock.json"];
const CONSOLE_STAMP = "dist/console/.build-stamp";
const CONSOLE_OUTPUTS = ["dist/console/index.html"];
const CONSOLE_SOURCES = /\.(ts|tsx|mjs|css|html|svg)$/;

function mtimeMs(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The latest change time among the build's inputs (files and directories). */
function newestInput(root, inputDirs = INPUT_DIRS, inputFiles = INPUT_FILES, sources = /\.ts$/) {
  let newest = 0;
  for (const file of inputFiles) newest = Math.max(newest, mtimeMs(join(root, file)) ?? 0);
  const visit = (dir) => {
    newest = Math.max(newest, statSync(dir).mtimeMs);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (sources.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const dir of inputDirs) {
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

/** True when dist/console was built after the last change to console/ or gen/ts/. */
export function isConsoleCurrent(root = PROJECT_ROOT) {
  const stamp = mtimeMs(join(root, CONSOLE_STAMP));
  return (
    stamp !== undefined &&
    CONSOLE_OUTPUTS.every((file) => mtimeMs(join(root, file)) !== undefined) &&
    newestInput(root, CONSOLE_INPUT_DIRS, CONSOLE_INPUT_FILES, CONSOLE_SOURCES) <= stamp
  );
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

/** Runs Vite on console/ (console/vite.config.mjs) into dist/console. */
function buildConsole(root, output) {
  const vite = join(root, "node_modules/vite/bin/vite.js");
  const started = new Date();
  const result = spawnSync(
    process.execPath,
    [vite, "build", "--config", join(root, "console/vite.config.mjs")],
    {
      cwd: root,
      stdio: output === "inherit" ? "inherit" : ["ignore", "pipe", "pipe"],
      encoding: "utf8",
    },
  );
  const messages = `${result.stdout ?? ""}${result.stderr ?? ""}${result.error ? String(result.error) : ""}`;
  const ok = result.status === 0;
  if (ok) {
    const stamp = join(root, CONSOLE_STAMP);
    writeFileSync(stamp, `${started.toISOString()}\n`);
    utimesSync(stamp, started, started);
  }
  return { ok, messages };
}

/**
 * Builds dist/ and dist/console (each only when it is not current, with `ifStale`; only the
 * console with `consoleOnly`), under the lock. Returns `{ ok, built, messages }`: `ok` when
 * both are current afterwards, `built` when this call ran tsc or Vite, `messages` their
 * output when captured.
 */
export function build({
  root = PROJECT_ROOT,
  ifStale = false,
  output = "inherit",
  consoleOnly = false,
} = {}) {
  const serverCurrent = () => consoleOnly || (ifStale && isBuildCurrent(root));
  const consoleCurrent = () => ifStale && isConsoleCurrent(root);
  if (serverCurrent() && consoleCurrent()) return { ok: true, built: false, messages: "" };
  const refused = lock(root);
  if (refused !== undefined) return { ok: false, built: false, messages: refused };
  try {
    // The build we waited for may have done the work.
    if (serverCurrent() && consoleCurrent()) return { ok: true, built: false, messages: "" };
    if (serverCurrent()) {
      const { ok, messages } = buildConsole(root, output);
      return { ok, built: true, messages };
    }
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
    if (!ok || consoleCurrent()) return { ok, built: true, messages };
    const consoleBuild = buildConsole(root, output);
    return { ok: consoleBuild.ok, built: true, messages: messages + consoleBuild.messages };
  } finally {
    rmSync(join(root, LOCK), { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ifStale = process.argv.includes("--if-stale");
  const consoleOnly = process.argv.includes("--console-only");
  const { ok, built, messages } = build({ ifStale, consoleOnly });
  if (ok && !built) console.log("build: dist/ is current");
  if (!ok && !built) console.error(`build: ${messages}`);
  process.exitCode = ok ? 0 : 1;
}
