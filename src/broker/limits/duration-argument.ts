import type { Duration } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "../errors.js";

/** google.protobuf.Duration's own range: about ±10,000 years. */
const MAX_DURATION_SECONDS = 315_576_000_000n;

/** The longest a receive or accept may wait in one call; an empty answer asks again. */
export const MAX_WAIT_MS = 24 * 3600 * 1000;

/**
 * A duration a client sent, in milliseconds, refused with INVALID_ARGUMENT (naming `field`)
 * when it is not a valid google.protobuf.Duration, negative, or over `maxMs`: no timer,
 * date or deadline is ever computed from an out-of-range value. Unset is 0.
 */
export function durationArgumentMs(
  value: Duration | undefined,
  field: string,
  maxMs: number,
  entityPath?: string,
): number {
  if (value === undefined) return 0;
  const { seconds, nanos } = value;
  const subject = entityPath === undefined ? {} : { entityPath };
  if (
    seconds > MAX_DURATION_SECONDS ||
    seconds < -MAX_DURATION_SECONDS ||
    nanos > 999_999_999 ||
    nanos < -999_999_999 ||
    (seconds > 0n && nanos < 0) ||
    (seconds < 0n && nanos > 0)
  ) {
    throw new InvalidArgumentError(
      field,
      `${field} is not a valid duration (seconds within ±315,576,000,000, nanos within ±999,999,999 and of the same sign).`,
      subject,
    );
  }
  const ms = Number(seconds) * 1000 + Math.floor(nanos / 1_000_000);
  if (ms < 0) {
    throw new InvalidArgumentError(field, `${field} must not be negative.`, subject);
  }
  if (ms > maxMs) {
    throw new InvalidArgumentError(
      field,
      `${field} is ${formatMs(ms)}; at most ${formatMs(maxMs)} is allowed.`,
      subject,
    );
  }
  return ms;
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
