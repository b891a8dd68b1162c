/**
 * Every default of the client SDK, and the one function that applies them. Options left
 * undefined take the value here; the option types document the same values (`@default`).
 */

/** createSessionBusClient. */
export const CLIENT_DEFAULTS = {
  /** Deadline of a unary call. */
  callTimeoutMs: 30_000,
};

/** client.receiver (entities without sessions). */
export const RECEIVER_DEFAULTS = {
  /** Unsettled messages at once: 1 keeps competing receivers fair. */
  prefetch: 1,
  receiveMode: "peekLock" as "peekLock" | "receiveAndDelete",
};

/** client.acceptSession / client.acceptNextSession. */
export const SESSION_RECEIVER_DEFAULTS = {
  /** A session's messages go to its holder only, so prefetching takes nothing from others. */
  prefetch: 10,
  receiveMode: "peekLock" as "peekLock" | "receiveAndDelete",
  /** Accept-next: how long to wait for a session (the broker's default too). */
  maxWaitMs: 60_000,
};

/** createSessionProcessor. */
export const PROCESSOR_DEFAULTS = {
  maxConcurrentSessions: 8,
  maxConcurrentCallsPerSession: 1,
  /** 5 minutes; 0 disables renewal. */
  maxAutoLockRenewalDurationMs: 300_000,
  /** Also the broker's default accept-next wait. */
  sessionIdleTimeoutMs: 60_000,
  autoCompleteMessages: true,
  prefetch: SESSION_RECEIVER_DEFAULTS.prefetch,
};

/** client.requestReply. */
export const REQUEST_REPLY_DEFAULTS = {
  timeoutMs: 60_000,
};

/** client.createResponder. */
export const RESPONDER_DEFAULTS = {
  maxConcurrentCalls: 16,
};

/** After a failure of accept or receive, retries wait this long, doubling up to the max. */
export const RETRY_DEFAULTS = {
  firstDelayMs: 250,
  maxDelayMs: 10_000,
};

/**
 * The options with every undefined field of `defaults` filled in. Only keys of `defaults`
 * are taken; options without a default are read from the options themselves.
 */
export function withDefaults<T extends object>(
  defaults: T,
  options: { [K in keyof T]?: T[K] | undefined } | undefined,
): T {
  const resolved = { ...defaults };
  if (options === undefined) return resolved;
  for (const key of Object.keys(defaults) as (keyof T)[]) {
    const value = options[key];
    if (value !== undefined) resolved[key] = value as T[keyof T];
  }
  return resolved;
}
