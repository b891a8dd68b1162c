import type { SessionRecord, VersionedSession } from "../../store/session-records.js";
import type { Store } from "../../store/store.js";
import { StoreUnavailableError } from "../errors.js";

/**
 * Read-modify-write of a session record by compare-and-set, retried when another writer
 * got in between. `change` sees the freshest record, may throw (e.g. when the lock is no
 * longer the caller's), and returns the record to write, or null to write nothing.
 * With `known` (the record as this process last wrote it), the first attempt skips the
 * read: on the hot path the holder is usually the only writer. That record may be stale
 * (the lock renewed through another call or broker process since): `change` is told so
 * (`fresh` false), and when it throws on it the record is read and `change` runs again, so
 * nothing is refused on the strength of an old copy.
 */
export async function updateSessionRecord(
  store: Store,
  streamId: string,
  token: string,
  change: (record: SessionRecord, fresh: boolean) => SessionRecord | null,
  known?: VersionedSession,
): Promise<VersionedSession> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const fresh = !(attempt === 0 && known);
    const current = fresh
      ? await store.sessions.read(streamId, token)
      : (known as VersionedSession);
    let next: SessionRecord | null;
    try {
      next = change(structuredClone(current.record), fresh);
    } catch (error) {
      if (fresh) throw error;
      continue;
    }
    if (next === null) {
      if (fresh) return current;
      continue; // nothing to write, judged on an old copy: judge again on the record
    }
    const revision = await store.sessions.write(streamId, token, next, current.revision);
    if (revision !== undefined) return { record: next, revision };
  }
  throw new StoreUnavailableError("updating a session record that keeps changing");
}
