import { type RunningSessionbus, startSessionbus } from "./app.js";
import { readConfig } from "./config.js";
import { reloadTlsOnSignal } from "./tls-reload.js";

/**
 * `npm start`: runs the broker until SIGTERM or SIGINT, then shuts down gracefully; SIGHUP
 * re-reads the TLS certificate.
 */
async function main(): Promise<void> {
  const config = readConfig();
  let running: RunningSessionbus | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`sessionbus: ${signal} received, shutting down`);
    // A signal during start-up is acted on once the broker is up (see below).
    running?.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("sessionbus: shutdown failed:", error);
        process.exit(1);
      },
    );
  };
  // Installed before anything starts, so no signal meets the default action (exit at once).
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // Certificates rotate without a restart; before the broker is up there is nothing to reload.
  process.on("SIGHUP", () => {
    if (running === undefined) return;
    const { ok, line } = reloadTlsOnSignal(running);
    (ok ? console.log : console.error)(line);
  });
  running = await startSessionbus(config);
  const nats = config.natsUrl
    ? running.natsUrl
    : `embedded nats-server at ${running.natsUrl}, data in ${config.dataDir}`;
  // Before the listening line: whoever waits for that line has read this one too.
  console.log(`sessionbus: ${running.auth.note}`);
  console.log(`sessionbus: ${running.replication.note}`);
  const tls = config.tls?.clientCaFile ? "TLS with client certificates" : "TLS";
  console.log(
    `sessionbus listening on ${running.url} (gRPC) and ${running.httpUrl} (Connect, gRPC-Web)${running.tls ? `, ${tls} only` : ""}; NATS: ${nats}`,
  );
  if (stopping) {
    await running.close();
    process.exit(0);
  }
}

main().catch((error: unknown) => {
  console.error(`sessionbus: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
