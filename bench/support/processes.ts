/**
 * The processes under test: a nats-server with a temporary store and monitoring, and the
 * broker as a child process (`node dist/src/main.js` after `npm run build`, as `npm start`
 * runs it, so the child's pid is the broker itself, whose RSS and CPU time /proc reports).
 * Only 127.0.0.1.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { listeningUrl, parseLogLine } from "../../src/observability/log-line.js";
import { type NatsServerProcess, startNatsServer } from "../../src/store/nats-server-process.js";
import { BENCH_ROOT_KEY } from "./credentials.js";

export const projectRoot = fileURLToPath(new URL("../..", import.meta.url));

const HOST = "127.0.0.1";
const BROKER_START_TIMEOUT_MS = 30_000;
const BROKER_STOP_GRACE_MS = 15_000;
const TAIL_LINES = 200;
/** What broker-memory-probe.mjs starts its line with (not imported: it has side effects). */
const MEMORY_LINE_PREFIX = "bench-memory ";
const STACK_LINES = 8;
const FETCH_TIMEOUT_MS = 5_000;

export interface BenchNats {
  url: string;
  monitorUrl: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts nats-server with JetStream in `storeDir` and the HTTP monitor on a free port. */
export async function startBenchNats(storeDir: string): Promise<BenchNats> {
  const monitorPort = await freePort();
  const server: NatsServerProcess = await startNatsServer({
    storeDir,
    host: HOST,
    monitorPort,
    credentials: "none",
  });
  const pid = Number((await readFile(join(storeDir, "nats-server.pid"), "utf8")).trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error("nats-server wrote no pid file");
  return {
    url: server.url,
    monitorUrl: server.monitorUrl ?? `http://${HOST}:${monitorPort}`,
    pid,
    stop: () => server.stop(),
  };
}

export interface BrokerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StderrEntry {
  line: string;
  count: number;
  /** The first stack-trace lines that followed its first occurrence. */
  stack: string[];
}

export interface BenchBroker {
  url: string;
  pid: number;
  /** Set once the process has ended; undefined while it runs. */
  exit(): BrokerExit | undefined;
  /** SIGTERM, SIGKILL after 15 s; resolves with how it ended. */
  stop(): Promise<BrokerExit>;
  /**
   * What the broker wrote to stderr, and the warnings and errors of its log (JSON lines on
   * stdout), each distinct line once, with its count.
   */
  stderrSummary(): StderrEntry[];
  /** The last lines of its output, both streams. */
  output(): string;
  /** Memory after a full garbage collection in the broker (see broker-memory-probe.mjs). */
  memoryAfterGc(): Promise<BrokerMemory>;
}

export interface BrokerMemory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface BrokerOptions {
  natsUrl: string;
  /** Extra node flags, e.g. ["--cpu-prof", "--cpu-prof-dir", dir]. */
  nodeArgs?: string[];
  /** More environment for the broker, e.g. { SESSIONBUS_AUTH: "off" }. */
  env?: Record<string, string>;
  /**
   * How long the broker may take to print its listening line. @default 30 s (one nats-server;
   * a broker that brings a store to three replicas first prints nothing for longer)
   */
  startTimeoutMs?: number;
}

/**
 * Compiles the broker (and the CLI) as `npm start` does (`npm run build`: tsc into dist/),
 * when dist/ is older than the sources.
 */
export async function buildBroker(): Promise<void> {
  await promisify(execFile)(
    process.execPath,
    [join(projectRoot, "scripts/build.mjs"), "--if-stale"],
    { cwd: projectRoot },
  );
}

/** Starts the broker on a free port and resolves once it prints its listening line. */
export async function startBenchBroker(options: BrokerOptions): Promise<BenchBroker> {
  const probe = pathToFileURL(join(projectRoot, "bench/support/broker-memory-probe.mjs")).href;
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), "--expose-gc", "--import", probe, "dist/src/main.js"],
    {
      cwd: projectRoot,
      env: {
        ...process.env,
        SESSIONBUS_HOST: HOST,
        SESSIONBUS_PORT: "0",
        SESSIONBUS_HTTP_PORT: "0",
        NATS_URL: options.natsUrl,
        SESSIONBUS_ROOT_KEY: BENCH_ROOT_KEY,
        // The listening line is logged at info.
        SESSIONBUS_LOG_LEVEL: "info",
        ...options.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  killOnExit(child);
  const tail: string[] = [];
  const stderr = new Map<string, StderrEntry>();
  let last: StderrEntry | undefined;
  let onListening: (url: string) => void = () => {};
  const listening = new Promise<string>((resolve) => {
    onListening = resolve;
  });
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
  };
  const memoryWaiters: ((memory: BrokerMemory) => void)[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (line.startsWith(MEMORY_LINE_PREFIX)) {
      const memory = JSON.parse(line.slice(MEMORY_LINE_PREFIX.length)) as BrokerMemory;
      for (const waiter of memoryWaiters.splice(0)) waiter(memory);
      return;
    }
    keep(line);
    const url = listeningUrl(line);
    if (url !== undefined) onListening(url);
    const logged = parseLogLine(line);
    if (logged && ["warn", "error", "fatal"].includes(logged.level)) {
      const err = (logged.err as { message?: unknown } | undefined)?.message;
      const key = `${logged.level}: ${logged.msg}${typeof err === "string" ? `: ${err}` : ""}`;
      const entry = stderr.get(key.slice(0, 300)) ?? {
        line: key.slice(0, 300),
        count: 0,
        stack: [],
      };
      entry.count++;
      stderr.set(entry.line, entry);
    }
  });
  createInterface({ input: child.stderr }).on("line", (line) => {
    keep(line);
    if (/^\s+at /.test(line)) {
      if (last && last.count === 1 && last.stack.length < STACK_LINES) last.stack.push(line.trim());
      return;
    }
    if (line.trim() === "") return;
    const key = line.replace(/^\(node:\d+\) /, "").slice(0, 300);
    last = stderr.get(key) ?? { line: key, count: 0, stack: [] };
    last.count++;
    stderr.set(key, last);
  });
  let ended: BrokerExit | undefined;
  const exited = new Promise<BrokerExit>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: null, signal: null }));
  }).then((exit) => {
    ended = exit;
    return exit;
  });
  const output = () => (tail.length === 0 ? "(no output)" : tail.join("\n"));

  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    listening,
    exited.then(() => undefined),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(
        () => resolve(undefined),
        options.startTimeoutMs ?? BROKER_START_TIMEOUT_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  if (outcome === undefined || child.pid === undefined) {
    child.kill("SIGKILL");
    await exited;
    const within = `${(options.startTimeoutMs ?? BROKER_START_TIMEOUT_MS) / 1000} s`;
    throw new Error(`the broker did not start within ${within}. Output:\n${output()}`);
  }
  const pid = child.pid;
  return {
    url: outcome,
    pid,
    exit: () => ended,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const escalate = setTimeout(() => child.kill("SIGKILL"), BROKER_STOP_GRACE_MS);
      try {
        return await exited;
      } finally {
        clearTimeout(escalate);
      }
    },
    stderrSummary: () => [...stderr.values()],
    memoryAfterGc: async () => {
      let timer: NodeJS.Timeout | undefined;
      const reported = new Promise<BrokerMemory>((resolve, reject) => {
        memoryWaiters.push(resolve);
        timer = setTimeout(() => reject(new Error("the broker did not report its memory")), 30_000);
      });
      child.kill("SIGUSR2");
      return reported.finally(() => clearTimeout(timer));
    },
    output,
  };
}

/** What bare-grpc-server.ts prints once it listens (not imported: it has side effects). */
const BARE_LISTENING = /^bare-grpc-server listening on (\S+)$/;

export interface BareGrpcServer {
  /** host:port, as a grpc-js client takes it. */
  address: string;
  pid: number;
  /** SIGTERM, SIGKILL after 15 s. */
  stop(): Promise<void>;
}

/**
 * Starts bench/support/bare-grpc-server.ts (a grpc-js server with nothing but
 * Health/Check) as a child process of its own, so its CPU time is read from /proc as the
 * broker's is. Resolves once it listens.
 */
export async function startBareGrpcServer(): Promise<BareGrpcServer> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(projectRoot, "bench/support/bare-grpc-server.ts")],
    // stdin stays open: the server ends when this process goes away.
    { cwd: projectRoot, stdio: ["pipe", "pipe", "pipe"] },
  );
  killOnExit(child);
  const tail: string[] = [];
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
  };
  createInterface({ input: child.stderr }).on("line", keep);
  const exited = new Promise<void>((resolve) => {
    child.once("close", () => resolve());
    child.once("error", () => resolve());
  });
  let timer: NodeJS.Timeout | undefined;
  const address = await Promise.race([
    new Promise<string>((resolve) => {
      createInterface({ input: child.stdout }).on("line", (line) => {
        keep(line);
        const match = BARE_LISTENING.exec(line);
        if (match?.[1] !== undefined) resolve(match[1]);
      });
    }),
    exited.then(() => undefined),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), BROKER_START_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  if (address === undefined || child.pid === undefined) {
    child.kill("SIGKILL");
    await exited;
    throw new Error(`the bare grpc-js server did not start. Output:\n${tail.join("\n")}`);
  }
  return {
    address,
    pid: child.pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const escalate = setTimeout(() => child.kill("SIGKILL"), BROKER_STOP_GRACE_MS);
      try {
        await exited;
      } finally {
        clearTimeout(escalate);
      }
    },
  };
}

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

/** A bench that dies must not leave a child behind (nats-server has its own hook). */
function killOnExit(child: ChildProcess): void {
  if (!exitHookInstalled) {
    process.once("exit", () => {
      for (const each of children) each.kill("SIGKILL");
    });
    exitHookInstalled = true;
  }
  children.add(child);
  child.once("close", () => children.delete(child));
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, HOST, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP port assigned");
  return address.port;
}

/** Resident set size of a process in bytes (VmRSS of /proc/<pid>/status). */
export async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match?.[1] === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

let clockTicks: number | undefined;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  clockTicks ??= await readClockTicks();
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may contain spaces; the fields after its ")" are fixed.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  return (user + system) / clockTicks;
}

/** CPU seconds all processes of the machine have used since boot (busy time of /proc/stat). */
export async function machineCpuSeconds(): Promise<number> {
  clockTicks ??= await readClockTicks();
  const stat = await readFile("/proc/stat", "utf8");
  const fields = (stat.split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
  const busy = fields
    .slice(0, 8)
    .reduce((sum, value, i) => (i === 3 || i === 4 ? sum : sum + value), 0);
  return busy / clockTicks;
}

async function readClockTicks(): Promise<number> {
  try {
    const { stdout } = await promisify(execFile)("getconf", ["CLK_TCK"], { timeout: 5_000 });
    const ticks = Number(stdout.trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/** GETs a JSON document of the nats-server monitor (/varz, /jsz), bounded in time. */
export async function monitorJson(
  monitorUrl: string,
  path: string,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${monitorUrl}${path}`, {
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return (await response.json()) as Record<string, unknown>;
}
