/**
 * A pull that ended before its time for a reason other than the consumer's messages: its
 * heartbeats were missed (typically a starved event loop), the nats-server shut down, or
 * the consumer is gone (a session consumer lives in memory and does not survive a restart
 * of the nats-server). The server may have delivered to it, so messages of that pull can
 * arrive unseen: callers treat them as in flight (they come back when their lock or
 * consumer ends), and pull again or recreate the consumer.
 */
export class PullInterruptedError extends Error {
  override readonly name = "PullInterruptedError";
  constructor(cause: unknown) {
    super("The pull was interrupted and abandoned.", { cause });
  }
}

/** nats.js's errors for the pulls PullInterruptedError stands for. */
export function isInterruptedPull(error: unknown): boolean {
  return (
    error instanceof Error && /heartbeats missed|server shutdown|no responders/i.test(error.message)
  );
}

/**
 * A pull ended because its consumer was deleted (or is found missing when nats.js looks
 * after a reconnect): by a new holder of the session, with its
 * entity, or (a session consumer lives in memory) by a nats-server shutting down.
 */
export function isConsumerDeleted(error: unknown): boolean {
  return error instanceof Error && /consumer (deleted|not found)/i.test(error.message);
}
