/**
 * `sessionbus serve`: the broker in the foreground. The broker's modules are loaded only
 * here, so that every other command starts without them.
 */
import { positionals } from "./args.js";
import { type Command, EXIT } from "./command.js";

export const SERVE_COMMAND: Command = {
  options: {},
  async run(ctx) {
    positionals(ctx.parsed, "serve", []);
    const [{ startSessionbus }, { readConfig }, { reloadTlsOnSignal }] = await Promise.all([
      import("../app.js"),
      import("../config.js"),
      import("../tls-reload.js"),
    ]);
    const config = readConfig(ctx.io.env);
    const running = await startSessionbus(config);
    const tls = config.tls?.clientCaFile ? "TLS with client certificates" : "TLS";
    ctx.io.stderr(
      `sessionbus listening on ${running.url} (gRPC) and ${running.httpUrl} (Connect, gRPC-Web)${running.tls ? `, ${tls} only` : ""}; NATS: ${running.natsUrl}`,
    );
    const reload = () => ctx.io.stderr(reloadTlsOnSignal(running).line);
    process.on("SIGHUP", reload);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        ctx.io.stderr(`sessionbus: ${signal} received, shutting down`);
        resolve();
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
    process.off("SIGHUP", reload);
    await running.close();
    return EXIT.ok;
  },
};
