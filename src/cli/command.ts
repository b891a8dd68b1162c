/** What every CLI command is given and shares: exit codes, output, the client. */
import type { ConnectionString, SessionBusClient, SessionBusError } from "../client/index.js";
import type { Parsed, parseCommand, UsageError } from "./args.js";
import { COMMAND_HELP } from "./help.js";

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, brokerError: 1, usage: 2, nothingReceived: 3 } as const;

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

export interface Context {
  parsed: Parsed;
  io: Io;
  json: boolean;
  client(): SessionBusClient;
  /** The connection string of --connection-string or SESSIONBUS_CONNECTION_STRING, if any. */
  connection(): ConnectionString | undefined;
  /**
   * The SQL expression the command sends, when it sends one: a parse error's position is
   * shown under it.
   */
  sqlExpression?: string | undefined;
}

export type Handler = (ctx: Context) => Promise<number>;

export interface Command {
  options: Parameters<typeof parseCommand>[2];
  run: Handler;
  /** Lines for stderr after a broker error's own, on what to do about it in this command. */
  hints?(error: SessionBusError, ctx: Context): string[];
}

/** Reports a mistake in the command line; resolves to the usage exit code. */
export function usageFailure(error: UsageError, io: Io): number {
  io.stderr(`sessionbus: ${error.message}`);
  const help = error.command && error.command in COMMAND_HELP ? ` ${error.command}` : "";
  io.stderr(`Run "sessionbus${help} --help" for usage.`);
  return EXIT.usage;
}

/** JSON with bigints as strings, Dates as ISO strings and bytes as base64. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
    return v;
  });
}

/** Prints `json` under --json, else the text. */
export function print(ctx: Context, json: unknown, text: () => string): void {
  ctx.io.stdout(ctx.json ? toJson(json) : text());
}
