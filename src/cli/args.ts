/** Argument parsing of the CLI: node:util parseArgs, durations and numbers, usage errors. */
import { type ParseArgsConfig, parseArgs } from "node:util";

/** A mistake in the command line: printed with a hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  constructor(
    message: string,
    /** The command whose --help to point at, e.g. "queue". */
    readonly command?: string,
  ) {
    super(message);
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Options every command takes. */
export const GLOBAL_OPTIONS = {
  url: { type: "string" },
  "connection-string": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const satisfies Options;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** The command name: the first argument that is neither an option nor a global option's value. */
export function findCommand(argv: readonly string[]): { command?: string; rest: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") break;
    if (arg === "--url" || arg === "--connection-string") {
      i++;
      continue;
    }
    if (arg.startsWith("-")) continue;
    return { command: arg, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { rest: [...argv] };
}

/** Strict parse of one command's arguments (its options plus the global ones). */
export function parseCommand(command: string, argv: readonly string[], options: Options): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: { ...GLOBAL_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed["values"], positionals };
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error), command);
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "500ms", "30s", "5m", "1h"; a bare number is seconds. */
export function parseDuration(raw: string, flag: string, command: string): number {
  const found = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!found) {
    throw new UsageError(
      `${flag} takes a duration like 500ms, 30s, 5m or 1h, not "${raw}"`,
      command,
    );
  }
  return Math.round(Number(found[1]) * (UNITS[found[2] ?? "s"] ?? 1000));
}

/** A whole number of at least `min`. */
export function parseCount(raw: string, flag: string, command: string, min = 1): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${flag} takes a whole number of at least ${min}, not "${raw}"`, command);
  }
  return n;
}

const SIZE_UNITS: Record<string, number> = { "": 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** A byte count: "262144", "256KiB", "1MiB", "1GiB". */
export function parseBytes(raw: string, flag: string, command: string): number {
  const found = /^(\d+)(KiB|MiB|GiB)?$/.exec(raw.trim());
  if (!found) {
    throw new UsageError(
      `${flag} takes a size like 262144, 256KiB, 1MiB or 1GiB, not "${raw}"`,
      command,
    );
  }
  return Number(found[1]) * (SIZE_UNITS[found[2] ?? ""] ?? 1);
}

/** A sequence number (uint64). */
export function parseSequence(raw: string, flag: string, command: string): bigint {
  if (!/^\d+$/.test(raw.trim())) {
    throw new UsageError(`${flag} takes a sequence number, not "${raw}"`, command);
  }
  return BigInt(raw.trim());
}

export function str(parsed: Parsed, name: string): string | undefined {
  const v = parsed.values[name];
  return typeof v === "string" ? v : undefined;
}

/** Every value of a `multiple` string option, in order. */
export function strs(parsed: Parsed, name: string): string[] {
  const v = parsed.values[name];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
}

export function flag(parsed: Parsed, name: string): boolean {
  return parsed.values[name] === true;
}

/** Exactly the positionals named, in order. */
export function positionals(parsed: Parsed, command: string, names: readonly string[]): string[] {
  const got = parsed.positionals;
  if (got.length < names.length) {
    throw new UsageError(`missing ${names.slice(got.length).join(" ")}`, command);
  }
  if (got.length > names.length) {
    throw new UsageError(`unexpected argument "${got[names.length]}"`, command);
  }
  return got;
}

/**
 * When a scheduled message becomes receivable: a delay from now like a duration ("30s",
 * "5m"; a bare number is seconds) or a date and time ("2026-12-24T18:00:00Z"; without a
 * zone, local time).
 */
export function parseTime(raw: string, flag: string, command: string, now = Date.now()): Date {
  if (/^\d+(?:\.\d+)?(ms|s|m|h)?$/.test(raw.trim())) {
    return new Date(now + parseDuration(raw, flag, command));
  }
  const at = /^\d{4}-\d\d-\d\d/.test(raw.trim()) ? Date.parse(raw.trim()) : Number.NaN;
  if (!Number.isFinite(at)) {
    throw new UsageError(
      `${flag} takes a delay like 30s or 5m, or a time like 2026-12-24T18:00:00Z, not "${raw}"`,
      command,
    );
  }
  return new Date(at);
}
