/**
 * Flags that describe message fields: application properties (`--property k=v`), the label,
 * and the filter of a rule (`--sql`, the correlation flags, `--true`, `--false`).
 */
import type { CorrelationRuleFilter, PropertyValue, RuleFilter } from "../client/index.js";
import { flag, type Parsed, str, strs, UsageError } from "./args.js";

/** Options of the message fields `send` sets and a correlation filter compares. */
export const MESSAGE_FIELD_OPTIONS = {
  "message-id": { type: "string" },
  "correlation-id": { type: "string" },
  label: { type: "string" },
  subject: { type: "string" },
  property: { type: "string", multiple: true },
} as const;

/** The options of a rule's filter. */
export const RULE_FILTER_OPTIONS = {
  ...MESSAGE_FIELD_OPTIONS,
  sql: { type: "string" },
  to: { type: "string" },
  "reply-to": { type: "string" },
  "session-id": { type: "string" },
  "reply-to-session-id": { type: "string" },
  "content-type": { type: "string" },
  true: { type: "boolean" },
  false: { type: "boolean" },
} as const;

/** Correlation flag → field of the filter. */
const CORRELATION_FLAGS = {
  "correlation-id": "correlationId",
  "message-id": "messageId",
  to: "to",
  "reply-to": "replyTo",
  "session-id": "sessionId",
  "reply-to-session-id": "replyToSessionId",
  "content-type": "contentType",
} as const;

const TYPES = ["string", "int", "double", "bool"] as const;

/**
 * `name=value`: a whole number is sent as an int, a decimal as a double, true/false as a
 * boolean, anything else as a string. `name:type=value` says the type (string, int, double,
 * bool), e.g. `zip:string=01234`.
 */
export function parseProperty(raw: string, command: string): [string, PropertyValue] {
  const eq = raw.indexOf("=");
  if (eq <= 0) throw new UsageError(`--property takes NAME=VALUE, not "${raw}"`, command);
  let name = raw.slice(0, eq);
  const value = raw.slice(eq + 1);
  const typed = /^(.+):(string|int|double|bool)$/.exec(name);
  const type = typed ? (typed[2] as (typeof TYPES)[number]) : undefined;
  if (typed) name = typed[1] as string;
  const bad = () =>
    new UsageError(
      `--property ${name}: "${value}" is not a${type === "int" ? "n" : ""} ${type}`,
      command,
    );
  switch (type) {
    case "string":
      return [name, value];
    case "int":
      if (!/^-?\d+$/.test(value)) throw bad();
      return [name, BigInt(value)];
    case "double":
      if (value.trim() === "" || !Number.isFinite(Number(value))) throw bad();
      return [name, Number(value)];
    case "bool":
      if (value !== "true" && value !== "false") throw bad();
      return [name, value === "true"];
    default:
      if (/^-?\d+$/.test(value)) return [name, BigInt(value)];
      if (/^-?\d*\.\d+(?:[eE][-+]?\d+)?$/.test(value)) return [name, Number(value)];
      if (value === "true" || value === "false") return [name, value === "true"];
      return [name, value];
  }
}

/** The --property flags as application properties (undefined when none). */
export function properties(
  parsed: Parsed,
  command: string,
): Record<string, PropertyValue> | undefined {
  const raw = strs(parsed, "property");
  if (raw.length === 0) return undefined;
  return Object.fromEntries(raw.map((each) => parseProperty(each, command)));
}

/** --label or its synonym --subject. */
export function label(parsed: Parsed, command: string): string | undefined {
  const l = str(parsed, "label");
  const s = str(parsed, "subject");
  if (l !== undefined && s !== undefined && l !== s) {
    throw new UsageError("--label and --subject name the same field: give one", command);
  }
  return l ?? s;
}

/**
 * The rule filter the flags describe: --sql, correlation flags, --true or --false (one
 * kind). Undefined when no filter flag is given.
 */
export function ruleFilter(parsed: Parsed, command: string): RuleFilter | undefined {
  const sql = str(parsed, "sql");
  const correlation: CorrelationRuleFilter = { kind: "correlation" };
  let compared = false;
  for (const [option, field] of Object.entries(CORRELATION_FLAGS)) {
    const value = str(parsed, option);
    if (value === undefined) continue;
    correlation[field] = value;
    compared = true;
  }
  const subject = label(parsed, command);
  if (subject !== undefined) {
    correlation.subject = subject;
    compared = true;
  }
  const props = properties(parsed, command);
  if (props) {
    correlation.applicationProperties = props;
    compared = true;
  }
  const kinds: RuleFilter[] = [];
  if (sql !== undefined) kinds.push({ kind: "sql", expression: sql });
  if (compared) kinds.push(correlation);
  if (flag(parsed, "true")) kinds.push({ kind: "true" });
  if (flag(parsed, "false")) kinds.push({ kind: "false" });
  if (kinds.length > 1) {
    throw new UsageError(
      "give one kind of filter: --sql, correlation flags (--correlation-id, --label, --property, …), --true or --false",
      command,
    );
  }
  return kinds[0];
}

/** A filter in one line: `sql: …`, `correlation: label=red tier=gold`, `true`, `false`. */
export function filterText(filter: RuleFilter): string {
  switch (filter.kind) {
    case "sql":
      return `sql: ${filter.expression}`;
    case "correlation": {
      const { kind: _kind, applicationProperties, ...fields } = filter;
      const parts = Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k === "subject" ? "label" : k}=${v}`);
      for (const [k, v] of Object.entries(applicationProperties ?? {})) {
        parts.push(`${k}=${propertyText(v)}`);
      }
      return `correlation: ${parts.join(" ")}`;
    }
    default:
      return filter.kind;
  }
}

function propertyText(value: PropertyValue): string {
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `base64:${Buffer.from(value).toString("base64")}`;
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}
