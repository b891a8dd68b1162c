/**
 * Runs one parsed command: gives it the client (made on first use, closed afterwards) and
 * turns what it throws into stderr lines and an exit code.
 */
import {
  type ConnectionString,
  createSessionBusClient,
  type SessionBusClient,
  SessionBusError,
} from "../client/index.js";
import { flag, type Parsed, str, UsageError } from "./args.js";
import { type Command, type Context, EXIT, type Io, usageFailure } from "./command.js";
import { connectionStringOf } from "./credentials.js";
import { authorizationHints, brokerErrorLines } from "./error-output.js";

export async function execute(spec: Command, parsed: Parsed, io: Io): Promise<number> {
  let client: SessionBusClient | undefined;
  let connection: ConnectionString | undefined;
  // Read on first use: `serve` needs no connection string, nor a valid one in the environment.
  let connectionRead = false;
  const connectionString = () => {
    if (!connectionRead) connection = connectionStringOf(parsed, io);
    connectionRead = true;
    return connection;
  };
  const ctx: Context = {
    parsed,
    io,
    json: flag(parsed, "json"),
    connection: connectionString,
    client() {
      const credentials = connectionString();
      const url =
        str(parsed, "url") ||
        io.env.SESSIONBUS_URL ||
        credentials?.urls ||
        "http://127.0.0.1:50051";
      client ??= createSessionBusClient({ url, connectionString: credentials });
      return client;
    },
  };
  try {
    return await spec.run(ctx);
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(error, io);
    if (error instanceof SessionBusError) {
      for (const line of brokerErrorLines(error, ctx.sqlExpression)) io.stderr(line);
      for (const line of authorizationHints(error, connection, io)) io.stderr(line);
      for (const line of spec.hints?.(error, ctx) ?? []) io.stderr(line);
      return EXIT.brokerError;
    }
    io.stderr(`sessionbus: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.brokerError;
  } finally {
    await client?.close();
  }
}
