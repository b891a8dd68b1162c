/**
 * Keeps a session lock alive: renews it before it runs out, until stopped or for at most a
 * given duration. Assumes the client's clock roughly agrees with the broker's (locked_until
 * is the broker's time).
 */
import { SessionLockLostError } from "./errors.js";

export interface LockRenewalOptions {
  /** Renews the lock; resolves with the new expiry. */
  renew(): Promise<Date>;
  /** The current expiry. */
  lockedUntil: Date;
  /** Stop renewing this long after the start; undefined: until stopped. */
  maxDurationMs: number | undefined;
  /** A renewal failed; it is tried again while the lock may still be held. */
  onError(error: unknown): void;
  /** The lock is gone (SessionLockLostError); renewal stops. */
  onLost(error: SessionLockLostError): void;
}

export interface LockRenewal {
  stop(): void;
}

/** Renew when this share of the remaining time is left, and at most this long before. */
const RENEW_AT_SHARE = 0.5;
const RENEW_MARGIN_MAX_MS = 10_000;
const RETRY_MIN_MS = 200;

export function startLockRenewal(options: LockRenewalOptions): LockRenewal {
  const until =
    options.maxDurationMs === undefined
      ? Number.POSITIVE_INFINITY
      : Date.now() + options.maxDurationMs;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = (delayMs: number) => {
    if (stopped || Date.now() + delayMs >= until) return;
    timer = setTimeout(renew, Math.max(0, delayMs));
    timer.unref();
  };
  const nextFor = (lockedUntil: Date) => {
    const left = lockedUntil.getTime() - Date.now();
    return left - Math.min(RENEW_MARGIN_MAX_MS, left * RENEW_AT_SHARE);
  };
  let current = options.lockedUntil;
  const renew = async () => {
    if (stopped) return;
    try {
      current = await options.renew();
      schedule(nextFor(current));
    } catch (error) {
      if (stopped) return;
      if (error instanceof SessionLockLostError) {
        stopped = true;
        options.onLost(error);
        return;
      }
      options.onError(error);
      const left = current.getTime() - Date.now();
      schedule(Math.max(RETRY_MIN_MS, left / 4));
    }
  };
  schedule(nextFor(current));
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
