/**
 * Flags of entity properties, shared by `queue`, `topic` and `subscription` create and
 * update: durations, counts, sizes and booleans that an update can turn off.
 */
import {
  flag,
  type Parsed,
  parseBytes,
  parseCount,
  parseDuration,
  str,
  UsageError,
} from "./args.js";

export function duration(p: Parsed, name: string, command: string): number | undefined {
  const raw = str(p, name);
  return raw === undefined ? undefined : parseDuration(raw, `--${name}`, command);
}

export function count(p: Parsed, name: string, command: string): number | undefined {
  const raw = str(p, name);
  return raw === undefined ? undefined : parseCount(raw, `--${name}`, command);
}

export function bytes(p: Parsed, name: string, command: string): number | undefined {
  const raw = str(p, name);
  return raw === undefined ? undefined : parseBytes(raw, `--${name}`, command);
}

/**
 * A boolean property: true for --NAME, false for --no-NAME (so an update can turn it off),
 * undefined for neither (the default on create, unchanged on update).
 */
export function toggle(p: Parsed, name: string, command: string): boolean | undefined {
  const on = flag(p, name);
  const off = flag(p, `no-${name}`);
  if (on && off) throw new UsageError(`--${name} and --no-${name} contradict`, command);
  return on ? true : off ? false : undefined;
}

/** Refuses an update without any property to change (it would do nothing). */
export function someChange(options: object, command: string): void {
  if (Object.values(options).every((v) => v === undefined)) {
    throw new UsageError(`${command} update needs at least one property flag`, command);
  }
}

/** A time to live for text output: "none" when messages never expire. */
export function ttl(ms: number | undefined): string {
  return ms === undefined ? "none" : `${ms}ms`;
}
