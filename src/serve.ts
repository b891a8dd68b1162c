import { type RunningSessionbus, startSessionbus } from "./app.js";
import { readConfig } from "./config.js";
import { LISTENING_MESSAGE } from "./observability/log-line.js";
import { log } from "./observability/logger.js";
import { reloadTlsOnSignal } from "./tls-reload.js";

/**
 * The broker as a process (`npm start` through src/main.ts, and `sessionbus serve`): reads
 * the environment, starts, logs where it listens, and runs until SIGTERM or SIGINT, then
 * shuts down gracefully; SIGHUP re-reads the TLS certificate. Everything it says is a JSON
 * line of the log (src/observability/logger.ts). Resolves with the exit code.
 *
 * Whoever waits for the broker to be up waits for the line whose `msg` starts with
 * "sessionbus listening on " (test/support/broker-process.ts, bench/support/processes.ts);
 * the authorization line comes before it, so they have read that one too.
 */
export async function serveUntilStopped(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config: ReturnType<typeof readConfig>;
  try {
    config = readConfig(env);
  } catch (error) {
    log.fatal({ err: error }, `sessionbus cannot start: ${messageOf(error)}`);
    return 1;
  }

  let running: RunningSessionbus | undefined;
  let stopping: string | undefined;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const close = (broker: RunningSessionbus) =>
    broker.close().then(
      () => {
        log.info("sessionbus stopped");
        finish(0);
      },
      (error: unknown) => {
        log.error({ err: error }, `shutdown failed: ${messageOf(error)}`);
        finish(1);
      },
    );
  const stop = (signal: string) => {
    if (stopping !== undefined) return;
    stopping = signal;
    log.info({ signal }, `${signal} received, shutting down`);
    // A signal during start-up is acted on once the broker is up (below).
    if (running) void close(running);
  };
  const onTerm = () => stop("SIGTERM");
  const onInt = () => stop("SIGINT");
  // Certificates rotate without a restart; before the broker is up there is nothing to reload.
  const onHup = () => {
    if (running === undefined) return;
    const { ok, line } = reloadTlsOnSignal(running);
    if (ok) log.info(line);
    else log.error(line);
  };
  // Installed before anything starts, so no signal meets the default action (exit at once).
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onInt);
  process.on("SIGHUP", onHup);
  try {
    try {
      running = await startSessionbus(config);
    } catch (error) {
      log.fatal({ err: error }, `sessionbus cannot start: ${messageOf(error)}`);
      return 1;
    }
    const nats = config.natsUrl
      ? withoutCredentials(running.natsUrl)
      : `embedded nats-server at ${running.natsUrl}, data in ${config.dataDir}`;
    log.info({ auth: running.auth.enabled }, running.auth.note);
    log.info({ replicas: running.replication.replicas }, running.replication.note);
    const tls = config.tls?.clientCaFile ? "TLS with client certificates" : "TLS";
    log.info(
      {
        grpcUrl: running.url,
        httpUrl: running.httpUrl,
        metricsUrl: `${running.httpUrl}/metrics`,
        nats,
        tls: running.tls,
      },
      `${LISTENING_MESSAGE}${running.url} (gRPC) and ${running.httpUrl} (Connect, gRPC-Web)${running.tls ? `, ${tls} only` : ""}; NATS: ${nats}`,
    );
    if (stopping !== undefined) void close(running);
    return await finished;
  } finally {
    process.off("SIGTERM", onTerm);
    process.off("SIGINT", onInt);
    process.off("SIGHUP", onHup);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A NATS URL as it may be logged: without a user and password written into it. */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === "" && parsed.password === "") return url;
    parsed.username = "";
    parsed.password = "";
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//");
  }
}
