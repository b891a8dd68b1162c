import { setTimeout as delay } from "node:timers/promises";

/** Tries of a start step in all. */
const ATTEMPTS = 5;
const PAUSE_MS = 400;

/**
 * Runs `step`, an idempotent creation, update or first watch of the store's own streams and
 * buckets at start, again when nats-server 2.9.10 answers it as it does while a replicated
 * stream is still being made:
 * - no answer (a timeout): two brokers starting at the same moment on a new cluster make the
 *   same streams at once; of two concurrent creations of one replicated stream, one got no
 *   answer, and a stream info of a stream whose group was still electing its first leader
 *   got none either (each a 5 s timeout, and the broker exited with "sessionbus: timeout");
 * - "stream not found" for a stream just made: a bucket's watch (a consumer) asked for right
 *   after the bucket's creation was answered, on a new 3-node cluster, reached a server that
 *   had not started its copy of the stream yet (the broker exited with "stream not found").
 * By the next try the stream is there, and the step finds it made.
 */
export async function againAtStart<T>(step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (attempt >= ATTEMPTS || !isStartRace(error)) throw error;
      await delay(PAUSE_MS);
    }
  }
}

function isStartRace(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === "TimeoutError" ||
      /^timeout$/i.test(error.message) ||
      error.name === "StreamNotFoundError" ||
      /^stream not found$/i.test(error.message))
  );
}
