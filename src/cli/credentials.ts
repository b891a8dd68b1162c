/**
 * The CLI's credentials: the connection string of --connection-string or
 * SESSIONBUS_CONNECTION_STRING, and what to tell a user the broker turned away.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  type ConnectionString,
  PermissionDeniedError,
  parseConnectionString,
  type SessionBusError,
  UnauthenticatedError,
} from "../client/index.js";
import { type Parsed, str, UsageError } from "./args.js";
import type { Io } from "./command.js";

export const CONNECTION_STRING_ENV = "SESSIONBUS_CONNECTION_STRING";

/** The file in the broker's data directory its root connection string is written to. */
const CONNECTION_STRING_FILE = "connection-string";

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

/**
 * Lines after the broker's error when it refused the caller: with no connection string,
 * where to find one; with one, what its refusal likely means.
 */
export function authorizationHints(
  error: SessionBusError,
  connection: ConnectionString | undefined,
  io: Io,
): string[] {
  if (error instanceof UnauthenticatedError && connection === undefined) {
    const dataDir = io.env.SESSIONBUS_DATA_DIR || "./data";
    const file = join(dataDir, CONNECTION_STRING_FILE);
    const found = existsSync(file) ? ` (there is one at ${resolve(file)})` : "";
    return [
      `sessionbus: the broker requires a shared access token, and no connection string was given: pass --connection-string or set ${CONNECTION_STRING_ENV}.`,
      `  At its first start the broker writes its root connection string to <data dir>/${CONNECTION_STRING_FILE} and logs that path; on the broker's machine${found}:`,
      `    export ${CONNECTION_STRING_ENV}="$(cat ${file})"`,
    ];
  }
  if (error instanceof UnauthenticatedError) {
    const given = connection?.sharedAccessSignature === undefined ? "key" : "token";
    const why: Record<string, string> = {
      TOKEN_INVALID:
        given === "key"
          ? "the broker does not accept the connection string's rule or key: was the rule deleted or its key regenerated, or is the EntityPath outside the rule's entity?"
          : "the broker does not accept the connection string's SharedAccessSignature.",
      TOKEN_EXPIRED:
        given === "key"
          ? "the token minted from the connection string was already expired at the broker: compare the clocks of this machine and the broker's."
          : "the connection string's SharedAccessSignature has expired: mint a new one (sessionbus token).",
    };
    const hint = why[error.reason];
    return hint === undefined ? [] : [`sessionbus: ${hint}`];
  }
  if (error instanceof PermissionDeniedError && connection?.keyName !== undefined) {
    const right = error.missingRight ?? "that";
    return [
      `sessionbus: rule "${connection.keyName}" lacks the ${right} right here; use the connection string of a rule that has it.`,
    ];
  }
  return [];
}
