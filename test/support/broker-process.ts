/**
 * The broker as a real child process, the way `npm start` runs src/main.ts, for tests that
 * signal it (SIGKILL, SIGTERM).
 *
 * It runs as `node --import tsx src/main.ts` rather than through the tsx CLI: the CLI starts
 * the program in a second node process and only relays catchable signals, so a SIGKILL of
 * the CLI would leave the broker itself running. Here the child is the broker.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { listeningUrl } from "../../src/observability/log-line.js";
import { TEST_ROOT_KEY } from "./test-credentials.js";

const projectRoot = fileURLToPath(new URL("../..", import.meta.url));
/** Generous: ten brokers starting at once through tsx on a busy 2-core machine. */
const START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const TAIL_LINES = 40;

export interface BrokerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface BrokerProcess {
  /** Base URL from the "listening" line, e.g. http://127.0.0.1:41234. */
  url: string;
  pid: number;
  /** Resolves once the process has exited (and its output is read). */
  exited: Promise<BrokerExit>;
  /** Sends a signal without waiting; kill("SIGKILL") is a crash. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, SIGKILL after 10 s; resolves with how the process ended. */
  stop(): Promise<BrokerExit>;
  /** The last lines the process wrote (stdout and stderr), for failure messages. */
  output(): string;
  /** Every line the process wrote to stdout (its log), in order. */
  stdout(): readonly string[];
  /** Resolves with the next line the process writes that matches `pattern` (after this call). */
  nextLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

export interface BrokerProcessOptions {
  /** NATS server the broker uses (NATS_URL); unset: the broker starts its embedded one. */
  natsUrl?: string;
  /** With the embedded nats-server: its data directory (SESSIONBUS_DATA_DIR). */
  dataDir?: string;
  /** @default 60_000 */
  startTimeoutMs?: number;
  /**
   * Sends this signal the moment the listening line is read, as a supervisor that waits for
   * readiness might. @default none
   */
  signalOnListening?: NodeJS.Signals;
  /** More environment variables for the broker (e.g. SESSIONBUS_TLS_CERT). */
  env?: Record<string, string>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Starts src/main.ts on a free port and resolves once it prints its listening line. */
export async function startBrokerProcess(options: BrokerProcessOptions): Promise<BrokerProcess> {
  const { NATS_URL: _inherited, SESSIONBUS_DATA_DIR: _dataDir, ...env } = process.env;
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: projectRoot,
    env: {
      ...env,
      SESSIONBUS_HOST: "127.0.0.1",
      SESSIONBUS_PORT: "0",
      SESSIONBUS_HTTP_PORT: "0",
      SESSIONBUS_ROOT_KEY: TEST_ROOT_KEY,
      // The listening line is logged at info.
      SESSIONBUS_LOG_LEVEL: "info",
      ...(options.natsUrl === undefined ? {} : { NATS_URL: options.natsUrl }),
      ...(options.dataDir === undefined ? {} : { SESSIONBUS_DATA_DIR: options.dataDir }),
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  killOnParentExit(child);

  const tail: string[] = [];
  const stdout: string[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => stdout.push(line));
  const lineWaiters = new Set<(line: string) => void>();
  let onListening: (url: string) => void = () => {};
  const listening = new Promise<string>((resolve) => {
    onListening = resolve;
  });
  // Both pipes are read for the whole life of the process, or it blocks on a full pipe.
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      for (const waiter of lineWaiters) waiter(line);
      // The broker logs JSON lines; the one whose msg says it listens names its URL.
      const url = listeningUrl(line);
      if (url === undefined) return;
      if (options.signalOnListening !== undefined) child.kill(options.signalOnListening);
      onListening(url);
    });
  }
  const output = () => (tail.length === 0 ? "(no output)" : tail.join("\n"));

  const exited = new Promise<BrokerExit>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: null, signal: null }));
  });
  void exited.then(() => running.delete(child));

  const timeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    listening.then((url) => ({ url })),
    exited.then((exit) => ({ exit })),
    new Promise<{ timeout: true }>((resolve) => {
      timer = setTimeout(() => resolve({ timeout: true }), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));

  if (!("url" in outcome)) {
    child.kill("SIGKILL");
    await exited;
    const why =
      "exit" in outcome
        ? `exited (code ${outcome.exit.code}, signal ${outcome.exit.signal})`
        : `did not print its listening line within ${timeoutMs} ms`;
    throw new Error(`the broker process ${why}. Output:\n${output()}`);
  }

  const pid = child.pid;
  if (pid === undefined) throw new Error("the broker process has no pid");
  return {
    url: outcome.url,
    pid,
    exited,
    kill: (signal = "SIGTERM") => {
      child.kill(signal);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const escalate = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
      try {
        return await exited;
      } finally {
        clearTimeout(escalate);
      }
    },
    output,
    stdout: () => stdout,
    nextLine: (pattern, waitMs = START_TIMEOUT_MS) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          lineWaiters.delete(waiter);
          reject(
            new Error(`no line matching ${pattern} within ${waitMs} ms. Output:\n${output()}`),
          );
        }, waitMs);
        const waiter = (line: string) => {
          if (!pattern.test(line)) return;
          clearTimeout(timer);
          lineWaiters.delete(waiter);
          resolve(line);
        };
        lineWaiters.add(waiter);
      }),
  };
}

/** A test process that dies must not leave brokers behind. */
function killOnParentExit(child: ChildProcess): void {
  if (!exitHookInstalled) {
    process.once("exit", () => {
      for (const each of running) each.kill("SIGKILL");
    });
    exitHookInstalled = true;
  }
  running.add(child);
}
