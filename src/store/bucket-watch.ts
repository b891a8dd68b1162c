import type { KV, KvEntry } from "@nats-io/kv";

/**
 * Watches every key of a KV bucket, handing each change to `apply`, and resolves once the
 * local copy holds every entry stored at the start: once the watch has delivered the
 * bucket's last revision as of the start (that entry is always the latest of its key, so the
 * watch delivers it or a newer one), or the end of its initial snapshot. Counting entries
 * instead would wait forever when another broker deletes some of them between the count and
 * the watch. Resolves with the function that stops the watch.
 */
export async function watchBucket(kv: KV, apply: (entry: KvEntry) => void): Promise<() => void> {
  const lastRevision = (await kv.status()).streamInfo.state.last_seq;
  const watch = await kv.watch();
  let synced: () => void = () => undefined;
  const initialSync = new Promise<void>((resolve) => {
    synced = resolve;
  });
  if (lastRevision === 0) synced();
  void (async () => {
    for await (const entry of watch) {
      apply(entry);
      // delta: how many entries of the initial snapshot are still to come.
      if (entry.revision >= lastRevision || entry.delta === 0) synced();
    }
  })();
  await initialSync;
  return () => watch.stop();
}
