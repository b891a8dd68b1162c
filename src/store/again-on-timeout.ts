import { setTimeout as delay } from "node:timers/promises";

/** Tries of a start step in all. */
const ATTEMPTS = 4;
const PAUSE_MS = 250;

/**
 * Runs `step`, an idempotent creation or update of the store's own streams and buckets at
 * start, again when it times out. Two brokers starting at the same moment on a new cluster
 * make the same streams at once, and nats-server 2.9.10 leaves requests unanswered while
 * one is being made: of two concurrent creations of one replicated stream, one got no
 * answer; a stream info of a stream whose group was still electing its first leader got
 * none either (each a 5 s timeout, and the broker exited with "sessionbus: timeout"). By
 * the next try the other broker's creation is done, and the step finds the stream made.
 */
export async function againOnTimeout<T>(step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (attempt >= ATTEMPTS || !isTimeout(error)) throw error;
      await delay(PAUSE_MS);
    }
  }
}

function isTimeout(error: unknown): boolean {
  return (
    error instanceof Error && (error.name === "TimeoutError" || /^timeout$/i.test(error.message))
  );
}
