/** Waiting between attempts after failures (never between successful ones). */
import { RETRY_DEFAULTS } from "./defaults.js";

/** The wait before attempt `failures + 1`: doubling from the first delay up to the max. */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_DEFAULTS.maxDelayMs, RETRY_DEFAULTS.firstDelayMs * 2 ** (failures - 1));
}

/** Resolves after `ms`, or at once when `signal` aborts (it never rejects). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
