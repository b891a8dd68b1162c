import { setImmediate as setImmediatePromise } from "node:timers/promises";

/**
 * Groups what `items` yields: each group is the next item plus whatever else has already
 * arrived, so that a burst is handled with one round trip instead of one per item (the
 * session receiver's record write, the order check's leader reads).
 */
export async function* readyGroups<T>(items: AsyncIterable<T>): AsyncGenerator<T[]> {
  const iterator = items[Symbol.asyncIterator]();
  let pending = iterator.next();
  try {
    yield* groups();
  } finally {
    // Left early (abandon, lock lost, a failed check): end the source; its outcome no
    // longer matters.
    pending.catch(() => undefined);
    void iterator.return?.()?.catch(() => undefined);
  }

  async function* groups(): AsyncGenerator<T[]> {
    for (;;) {
      const first = await pending;
      if (first.done) return;
      const group = [first.value];
      let done = false;
      for (;;) {
        pending = iterator.next();
        // Items already received resolve before a macrotask runs; later ones do not.
        const ready = await Promise.race([pending, setImmediatePromise().then(() => undefined)]);
        if (ready === undefined) break;
        if (ready.done) {
          done = true;
          break;
        }
        group.push(ready.value);
      }
      yield group;
      if (done) return;
    }
  }
}
