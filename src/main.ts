import { startSessionbus } from "./app.js";
import { readConfig } from "./config.js";

/** `npm start`: runs the broker until SIGTERM or SIGINT, then shuts down gracefully. */
async function main(): Promise<void> {
  const config = readConfig();
  const running = await startSessionbus(config);
  const nats = config.natsUrl
    ? running.natsUrl
    : `embedded nats-server at ${running.natsUrl}, data in ${config.dataDir}`;
  console.log(`sessionbus listening on ${running.url} (gRPC, gRPC-Web, Connect); NATS: ${nats}`);
  const stop = (signal: string) => {
    console.log(`sessionbus: ${signal} received, shutting down`);
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("sessionbus: shutdown failed:", error);
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

main().catch((error: unknown) => {
  console.error(`sessionbus: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
