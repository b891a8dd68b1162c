import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { stopStaleNatsServer } from "./stale-nats-server.js";

/** Where Debian's package puts the binary; /usr/sbin is often not on a normal user's PATH. */
const DEBIAN_BINARY = "/usr/sbin/nats-server";
const READY_LINE = "Server is ready";
const STOP_GRACE_MS = 5_000;
const TAIL_LINES = 20;
const PORT_RETRY_MS = 20;

export interface NatsServerOptions {
  /** JetStream store directory (`-sd`). Created when missing. */
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
}

export interface NatsServerProcess {
  /** Client URL, e.g. nats://127.0.0.1:4222. */
  url: string;
  port: number;
  storeDir: string;
  /** Set only when monitorPort was given. */
  monitorUrl?: string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
  stop(): Promise<void>;
  /** Sends a signal (default SIGTERM) without waiting; kill("SIGKILL") simulates a crash. */
  kill(signal?: NodeJS.Signals): void;
  /** Resolves with the exit code, or null when a signal ended the process. */
  exited: Promise<number | null>;
}

export async function startNatsServer(options: NatsServerOptions): Promise<NatsServerProcess> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? (await findFreePort(host));
  await mkdir(options.storeDir, { recursive: true });

  const requested = options.binary ?? (process.env.NATS_SERVER_BIN || "nats-server");
  const pidFile = join(options.storeDir, "nats-server.pid");
  await stopStaleNatsServer(pidFile);
  const args = ["-a", host, "-p", String(port), "-js", "-sd", options.storeDir, "-P", pidFile];
  if (options.monitorPort !== undefined) args.push("-m", String(options.monitorPort));

  const child = spawn(resolveBinary(requested), args, { stdio: ["ignore", "pipe", "pipe"] });
  const tail = new OutputTail(TAIL_LINES);
  const started = watchStart(child, requested, tail);
  const exited = started.exited;
  killOnParentExit(child, exited);

  const timeoutMs = options.startTimeoutMs ?? 10_000;
  const giveUp = new AbortController();
  try {
    await withTimeout(waitUntilReady(started, host, port, giveUp.signal), timeoutMs, () =>
      failure(`nats-server did not become ready within ${timeoutMs} ms`, tail),
    );
  } catch (error) {
    child.kill("SIGKILL");
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
    stop: () => stopChild(child, exited),
    kill: (signal = "SIGTERM") => {
      child.kill(signal);
    },
    exited,
  };
}

/** Asks the OS for a free port by listening on port 0. Another process may take it before us. */
async function findFreePort(host: string): Promise<number> {
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
function resolveBinary(requested: string): string {
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

/** The last lines the server wrote, for error messages. */
class OutputTail {
  private readonly lines: string[] = [];
  constructor(private readonly max: number) {}

  add(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }

  toString(): string {
    return this.lines.length === 0 ? "(no output)" : this.lines.join("\n");
  }
}

interface StartWatch {
  /** Resolves when the server logs READY_LINE. */
  readyLine: Promise<void>;
  /** Rejects when the process cannot be spawned or exits; never resolves. */
  failed: Promise<never>;
  exited: Promise<number | null>;
}

function watchStart(child: ChildProcess, requested: string, tail: OutputTail): StartWatch {
  let onReady = (): void => {};
  const readyLine = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  // Both streams must be drained for the server's whole life, or it blocks on a full pipe.
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    createInterface({ input: stream }).on("line", (line) => {
      tail.add(line);
      if (line.includes(READY_LINE)) onReady();
    });
  }

  let spawnError: Error | undefined;
  const exited = new Promise<number | null>((resolve) => {
    // "close" rather than "exit": by then all output has been read into the tail.
    child.once("close", (code) => resolve(code));
    child.on("error", (error) => {
      // After a failed spawn there is no process and "exit" may never come.
      if (child.pid === undefined) {
        spawnError = error;
        resolve(null);
      }
    });
  });
  const failed = exited.then((code): never => {
    if (spawnError !== undefined) throw spawnFailure(spawnError, requested);
    throw failure(`nats-server exited (code ${code}) before it was ready`, tail);
  });
  failed.catch(() => {}); // Only an error while starting matters; later ones are expected.
  return { readyLine, failed, exited };
}

async function waitUntilReady(
  started: StartWatch,
  host: string,
  port: number,
  signal: AbortSignal,
): Promise<void> {
  await Promise.race([started.readyLine, started.failed]);
  await Promise.race([waitForPort(host, port, signal), started.failed]);
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

async function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  const escalate = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(escalate);
  }
}

const running = new Set<ChildProcess>();
let parentExitHookInstalled = false;

/** Only synchronous work is possible in "exit", so SIGKILL; JetStream recovers from it. */
function killOnParentExit(child: ChildProcess, exited: Promise<number | null>): void {
  if (!parentExitHookInstalled) {
    process.once("exit", () => {
      for (const each of running) each.kill("SIGKILL");
    });
    parentExitHookInstalled = true;
  }
  running.add(child);
  void exited.then(() => running.delete(child));
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

function failure(summary: string, tail: OutputTail): Error {
  return new Error(`${summary}. Last output:\n${tail.toString()}`);
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
