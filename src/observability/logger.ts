import pino, { type Logger } from "pino";
import type { LogLevel } from "./log-levels.js";

export type { Logger } from "pino";

/**
 * Field names whose values never reach the log, wherever they appear one level deep: a
 * slip that logs a request or a rule then prints "[redacted]" instead of a key or a body.
 */
const SECRET_FIELDS = [
  "authorization",
  "token",
  "key",
  "primaryKey",
  "secondaryKey",
  "rootKey",
  "connectionString",
  "password",
  "body",
  "state",
];

/**
 * The broker's log: one JSON object per line on stdout (pino), with `time` (ISO 8601),
 * `level` (its name), `name` ("sessionbus") and `msg`, plus the fields of the event. One
 * logger per process: the broker process sets its level from SESSIONBUS_LOG_LEVEL
 * (src/main.ts); a broker started in-process by a program of its own logs warnings and
 * errors only until that program calls `setLogLevel`.
 *
 * Lines are written synchronously: they are few (start, stop, entity changes, lost
 * connections, errors; nothing per message), and a line written just before the process
 * exits must not be lost.
 */
export const log: Logger = pino(
  {
    name: "sessionbus",
    level: "warn",
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: SECRET_FIELDS.flatMap((field) => [field, `*.${field}`]),
      censor: "[redacted]",
    },
  },
  pino.destination({ dest: 1, sync: true }),
);

/** Changes the level of the process's log (SESSIONBUS_LOG_LEVEL). */
export function setLogLevel(level: LogLevel): void {
  log.level = level;
}
