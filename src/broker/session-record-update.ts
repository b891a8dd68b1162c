import type { SessionRecord, VersionedSession } from "../store/session-records.js";
import type { Store } from "../store/store.js";
import { StoreUnavailableError } from "./errors.js";

/**
 * Read-modify-write of a session record by compare-and-set, retried when another writer
 * got in between. `change` sees the freshest record, may throw (e.g. when the lock is no
 * longer the caller's), and returns the record to write, or null to write nothing.
 * With `known` (the record as this process last wrote it), the first attempt skips the
 * read: on the hot path the holder is usually the only writer.
 */
export async function updateSessionRecord(
  store: Store,
  streamId: string,
  token: string,
  change: (record: SessionRecord) => SessionRecord | null,
  known?: VersionedSession,
): Promise<VersionedSession> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = attempt === 0 && known ? known : await store.sessions.read(streamId, token);
    const next = change(structuredClone(current.record));
    if (next === null) return current;
    const revision = await store.sessions.write(streamId, token, next, current.revision);
    if (revision !== undefined) return { record: next, revision };
  }
  throw new StoreUnavailableError("updating a session record that keeps changing");
}
