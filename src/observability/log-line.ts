/**
 * Reading the broker's log lines (JSON objects, one per line) back: for whoever waits for
 * a broker to be up (the tests, the benchmark) and for tools of an operator.
 */

/** How the `msg` of the line a broker logs once it serves starts; the gRPC URL follows. */
export const LISTENING_MESSAGE = "sessionbus listening on ";

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** The log line `line` holds, or undefined when it is not one (any other output). */
export function parseLogLine(line: string): LogLine | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(line) as unknown;
    if (typeof parsed !== "object" || parsed === null) return undefined;
    const { level, msg } = parsed as { level?: unknown; msg?: unknown };
    return typeof level === "string" && typeof msg === "string" ? (parsed as LogLine) : undefined;
  } catch {
    return undefined;
  }
}

/** The gRPC URL a listening line names, or undefined for any other line. */
export function listeningUrl(line: string): string | undefined {
  const msg = parseLogLine(line)?.msg;
  if (!msg?.startsWith(LISTENING_MESSAGE)) return undefined;
  return /^\S+/.exec(msg.slice(LISTENING_MESSAGE.length))?.[0];
}
