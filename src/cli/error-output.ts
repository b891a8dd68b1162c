/**
 * How a broker error reads on stderr: "REASON: message", then for an invalid argument the
 * field at fault and, for a parse error, the expression with a caret under the position;
 * for a missing right, which one; for a refused token, what to do about it.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  type ConnectionString,
  PermissionDeniedError,
  type SessionBusError,
  UnauthenticatedError,
} from "../client/index.js";
import type { Io } from "./command.js";
import { CONNECTION_STRING_ENV, CONNECTION_STRING_FILE } from "./credentials.js";

/** Characters of a long expression shown on each side of the caret. */
const CONTEXT = 40;

export function brokerErrorLines(error: SessionBusError, expression?: string): string[] {
  const lines = [`${error.reason}: ${error.message}`];
  if (error.missingRight !== undefined) {
    const on = error.entityPath === undefined ? "" : ` on ${error.entityPath}`;
    lines.push(`  missing right: ${error.missingRight}${on}`);
  }
  if (error.field === undefined) return lines;
  if (error.position === undefined) {
    lines.push(`  field: ${error.field}`);
    return lines;
  }
  lines.push(`  field: ${error.field}, position ${error.position}`);
  if (expression !== undefined) lines.push(...caret(expression, error.position));
  return lines;
}

/** The expression (a window of it, when long) and a caret under the 1-based position. */
function caret(expression: string, position: number): string[] {
  // Positions count characters (code points), as the broker does.
  const chars = [...expression.replace(/[\t\r\n]/g, " ")];
  const at = Math.min(Math.max(position - 1, 0), chars.length);
  const start = Math.max(0, at - CONTEXT);
  const end = Math.min(chars.length, at + CONTEXT);
  const before = start > 0 ? "…" : "";
  const after = end < chars.length ? "…" : "";
  const shown = `${before}${chars.slice(start, end).join("")}${after}`;
  return [`    ${shown}`, `    ${" ".repeat(before.length + at - start)}^`];
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
