import type { DeliveryBatch } from "./delivery.js";

type Fetch = (max: number, expiresMs: number) => Promise<DeliveryBatch>;

/** A batch with nothing in it: a pull that never got its turn. */
const EMPTY_BATCH: DeliveryBatch = {
  stop: () => undefined,
  async *[Symbol.asyncIterator]() {},
};

/**
 * `fetch` with one pull outstanding at a time: a pull starts once the one before it ended
 * (iterated to its end, or stopped). Each receive stream under a session lock pulls from the
 * session's one consumer; with two pulls waiting at once, JetStream hands the consumer's
 * deliveries to both in turn, and the numbering withoutGaps checks arrives split between
 * them, out of order: it read as a jump and recreated the consumer (a recall) for nothing.
 * One at a time, the numbering arrives in order. A pull that cannot start within its own
 * `expiresMs` ends empty, as an expired pull would.
 */
export function onePullAtATime(fetch: Fetch): Fetch {
  let previous: Promise<void> = Promise.resolve();
  return async (max, expiresMs) => {
    const before = previous;
    let release = (): void => undefined;
    previous = new Promise<void>((resolve) => {
      release = resolve;
    });
    let timer: NodeJS.Timeout | undefined;
    const turn = await Promise.race([
      before.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), expiresMs);
      }),
    ]);
    clearTimeout(timer);
    if (!turn) {
      // Keep the order for those after: this place ends as soon as the one before it does.
      void before.then(release);
      return EMPTY_BATCH;
    }
    let batch: DeliveryBatch;
    try {
      batch = await fetch(max, expiresMs);
    } catch (error) {
      release();
      throw error;
    }
    return {
      stop: () => {
        batch.stop();
        release();
      },
      async *[Symbol.asyncIterator]() {
        try {
          yield* batch;
        } finally {
          release();
        }
      },
    };
  };
}
