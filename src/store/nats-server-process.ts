import type { ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, fchmodSync, openSync } from "node:fs";
import { rename } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { delimiter, join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { generateNatsCredentials, type NatsCredentials } from "./nats-credentials.js";
import { writeNatsServerConfig } from "./nats-server-config.js";
import { NatsServerLog } from "./nats-server-log.js";
import { killSupervisedGroup, releaseServer, spawnSupervised } from "./nats-server-supervisor.js";
import { readNatsServerVersion, supportsSyncAlways } from "./nats-server-version.js";
import { ensurePrivateDir } from "./private-dir.js";
import { stopStaleNatsServer } from "./stale-nats-server.js";

/** Where Debian's package puts the binary; /usr/sbin is often not on a normal user's PATH. */
const DEBIAN_BINARY = "/usr/sbin/nats-server";
/** JetStream flushes on SIGTERM; SIGKILL only for a server that ignores it this long. */
const STOP_GRACE_MS = 30_000;
const PORT_RETRY_MS = 20;

export interface NatsServerOptions {
  /** JetStream store directory (`-sd`). Created when missing; made 0700 either way. */
  storeDir: string;
  /**
   * Executable to run.
   * @default process.env.NATS_SERVER_BIN ?? "nats-server" (looked up on PATH, then /usr/sbin/nats-server)
   */
  binary?: string;
  /**
   * Address the client port binds to (`-a`).
   * @default "127.0.0.1"
   */
  host?: string;
  /**
   * Client port (`-p`).
   * @default a free port chosen by the OS
   */
  port?: number;
  /**
   * HTTP monitoring port (`-m`).
   * @default none: monitoring is off
   */
  monitorPort?: number;
  /**
   * How long to wait for the server to accept connections before giving up.
   * @default 10_000
   */
  startTimeoutMs?: number;
  /**
   * The user and password clients must present, given to the server in its config file (not
   * on the command line); "none" leaves the server open to anyone who reaches its port (for
   * tests and benchmarks only). Pass the previous run's to restart a server its clients
   * reconnect to.
   * @default fresh random ones (generateNatsCredentials)
   */
  credentials?: NatsCredentials | "none";
}

export interface NatsServerProcess {
  /** Client URL, e.g. nats://127.0.0.1:4222. */
  url: string;
  port: number;
  storeDir: string;
  /** Set only when monitorPort was given. */
  monitorUrl?: string;
  /** What clients must present; undefined when the server was started with credentials "none". */
  credentials: NatsCredentials | undefined;
  /** nats-server's own pid (it runs under a small shell, see nats-server-supervisor.ts). */
  pid: number;
  /** What `nats-server --version` printed, e.g. "nats-server: v2.9.10". */
  version: string;
  /** Whether JetStream fsyncs every write (`sync_interval: always`, nats-server 2.10+). */
  syncAlways: boolean;
  /** The server's output: `<storeDir>/nats-server.log` (the previous run's is `.log.1`). */
  logFile: string;
  /** SIGTERM, then SIGKILL after 30 s; resolves once the process has exited. */
  stop(): Promise<void>;
  /** Sends nats-server a signal (default SIGTERM) without waiting; kill("SIGKILL") simulates a crash. */
  kill(signal?: NodeJS.Signals): void;
  /** Resolves with the exit code, or null when a signal ended the process. */
  exited: Promise<number | null>;
}

export async function startNatsServer(options: NatsServerOptions): Promise<NatsServerProcess> {
  const host = options.host ?? "127.0.0.1";
  await ensurePrivateDir(options.storeDir);
  const requested = options.binary ?? (process.env.NATS_SERVER_BIN || "nats-server");
  const binary = resolveBinary(requested);
  const pidFile = join(options.storeDir, "nats-server.pid");
  const [port, version] = await Promise.all([
    options.port ?? findFreePort(host),
    readNatsServerVersion(binary).catch((error: Error) => {
      throw spawnFailure(error, requested);
    }),
    stopStaleNatsServer(pidFile),
  ]);
  const syncAlways = supportsSyncAlways(version);

  const args = ["-a", host, "-p", String(port), "-js", "-sd", options.storeDir, "-P", pidFile];
  if (options.monitorPort !== undefined) args.push("-m", String(options.monitorPort));
  const credentials =
    options.credentials === "none" ? undefined : (options.credentials ?? generateNatsCredentials());
  const configFile = await writeNatsServerConfig(options.storeDir, { syncAlways, credentials });
  if (configFile !== undefined) args.unshift("-c", configFile);

  const logFile = join(options.storeDir, "nats-server.log");
  await rename(logFile, `${logFile}.1`).catch(() => {}); // keep one previous log
  const logFd = openSync(logFile, "a", 0o600);
  let supervised: ReturnType<typeof spawnSupervised>;
  try {
    fchmodSync(logFd, 0o600); // a log the rename did not move keeps its old mode otherwise
    supervised = spawnSupervised(binary, args, logFd);
  } finally {
    closeSync(logFd); // the child has its own copy
  }
  const { shell, serverPid } = supervised;
  const log = new NatsServerLog(logFile);
  const exited = watchExit(shell);
  const failed = exited.then(async (code): Promise<never> => {
    throw failure(`nats-server exited (code ${code}) before it was ready`, await log.tail());
  });
  failed.catch(() => {}); // Only an exit while starting matters; later ones are expected.

  const timeoutMs = options.startTimeoutMs ?? 10_000;
  const giveUp = new AbortController();
  let pid: number;
  try {
    pid = await withTimeout(
      (async () => {
        const found = await Promise.race([serverPid, failed]);
        await Promise.race([log.waitForReady(giveUp.signal), failed]);
        await Promise.race([waitForPort(host, port, giveUp.signal), failed]);
        return found;
      })(),
      timeoutMs,
      async () =>
        failure(`nats-server did not become ready within ${timeoutMs} ms`, await log.tail()),
    );
  } catch (error) {
    killSupervisedGroup(shell);
    await exited;
    throw error;
  } finally {
    giveUp.abort();
  }

  return {
    url: `nats://${urlHost(host)}:${port}`,
    port,
    storeDir: options.storeDir,
    ...(options.monitorPort === undefined
      ? {}
      : { monitorUrl: `http://${urlHost(host)}:${options.monitorPort}` }),
    credentials,
    pid,
    version,
    syncAlways,
    logFile,
    stop: () => stopSupervised(shell, exited),
    kill: (signal = "SIGTERM") => {
      if (shell.exitCode === null && shell.signalCode === null) signalServer(pid, signal);
    },
    exited,
  };
}

function signalServer(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Asks the OS for a free port by listening on port 0. Another process may take it before us. */
export async function findFreePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP port assigned");
  return address.port;
}

/** A bare name is searched on PATH, then in /usr/sbin; paths are used as given. */
export function resolveBinary(requested: string): string {
  if (requested.includes("/")) return requested;
  const dirs = (process.env.PATH ?? "").split(delimiter).filter((dir) => dir !== "");
  const candidates = dirs.map((dir) => join(dir, requested));
  if (requested === "nats-server") candidates.push(DEBIAN_BINARY);
  return candidates.find(isExecutable) ?? requested;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Resolves with the shell's exit code, or null when a signal ended it (as it ended the server). */
function watchExit(shell: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    shell.once("close", (code) => resolve(code));
    // /bin/sh missing: there is no process and no "close" may come.
    shell.once("error", () => {
      if (shell.pid === undefined) resolve(null);
    });
  });
}

/** The ready line comes after the listener is up, so this normally succeeds at once. */
async function waitForPort(host: string, port: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted && !(await canConnect(host, port))) await delay(PORT_RETRY_MS);
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: connectHost(host), port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function withTimeout<T>(
  work: Promise<T>,
  ms: number,
  onTimeout: () => Promise<Error>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => onTimeout().then(reject, reject), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ends the pipe the supervisor watches: it sends SIGTERM and waits for the server. */
async function stopSupervised(shell: ChildProcess, exited: Promise<number | null>): Promise<void> {
  releaseServer(shell);
  const escalate = setTimeout(() => killSupervisedGroup(shell), STOP_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(escalate);
  }
}

function spawnFailure(error: Error, requested: string): Error {
  if ((error as NodeJS.ErrnoException).code === "ENOENT") {
    return new Error(
      `nats-server not found (looked for "${requested}"). Install it with: apt-get install -y nats-server — or set NATS_SERVER_BIN to its path, or NATS_URL to use a running server.`,
    );
  }
  return new Error(`could not start nats-server ("${requested}"): ${error.message}`, {
    cause: error,
  });
}

function failure(summary: string, tail: string): Error {
  return new Error(`${summary}. Last output:\n${tail}`);
}

/** A wildcard bind address is not something a client can connect to. */
function connectHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "::1";
  return host;
}

function urlHost(host: string): string {
  const target = connectHost(host);
  return target.includes(":") ? `[${target}]` : target;
}
