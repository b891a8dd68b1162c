/**
 * The CLI's credentials: the connection string of --connection-string or
 * SESSIONBUS_CONNECTION_STRING. (What to tell a user the broker turned away is in
 * error-output.ts.) Imports no more of the SDK than the connection string's parser, so that
 * `token` and --help start fast.
 */
import { type ConnectionString, parseConnectionString } from "../client/connection-string.js";
import { type Parsed, str, UsageError } from "./args.js";
import type { Io } from "./command.js";

export const CONNECTION_STRING_ENV = "SESSIONBUS_CONNECTION_STRING";

/** The file in the broker's data directory its root connection string is written to. */
export const CONNECTION_STRING_FILE = "connection-string";

/**
 * The connection string the command line or the environment gives (the flag wins), parsed;
 * undefined when neither gives one. A malformed one is a usage error (its key not shown).
 */
export function connectionStringOf(parsed: Parsed, io: Io): ConnectionString | undefined {
  const fromFlag = str(parsed, "connection-string");
  const text = fromFlag || io.env[CONNECTION_STRING_ENV];
  if (!text) return undefined;
  try {
    return parseConnectionString(text);
  } catch (error) {
    const source = fromFlag ? "--connection-string" : `$${CONNECTION_STRING_ENV}`;
    throw new UsageError(`${source}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
