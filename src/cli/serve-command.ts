/**
 * `sessionbus serve`: the broker in the foreground, exactly as `npm start` runs it
 * (src/serve.ts). The broker's modules, its log and its metrics are loaded only here, so
 * that every other command starts without them.
 */
import { positionals } from "./args.js";
import { type Command, EXIT } from "./command.js";

export const SERVE_COMMAND: Command = {
  options: {},
  async run(ctx) {
    positionals(ctx.parsed, "serve", []);
    const { serveUntilStopped } = await import("../serve.js");
    return (await serveUntilStopped(ctx.io.env)) === 0 ? EXIT.ok : EXIT.brokerError;
  },
};
