/**
 * How a broker error reads on stderr: "REASON: message", then for an invalid argument the
 * field at fault and, for a parse error, the expression with a caret under the position;
 * for a missing right, which one.
 */
import type { SessionBusError } from "../client/index.js";

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
