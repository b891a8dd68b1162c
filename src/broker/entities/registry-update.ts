import type { EntityRecord } from "../../store/entity-record.js";
import { RevisionConflictError } from "../../store/kv-compare-and-set.js";
import type { Store } from "../../store/store.js";
import { EntityNotFoundError, StoreUnavailableError } from "../errors.js";

const ATTEMPTS = 20;

/**
 * Read-modify-write of a registry record by compare-and-set, retried when another client
 * changed it in between. `change` may throw to refuse the change, or return the record it
 * was given to leave it as it is.
 */
export async function updateWithRetry(
  store: Store,
  key: string,
  change: (record: EntityRecord) => EntityRecord,
): Promise<EntityRecord> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const found = await store.entities.read(key);
    if (!found) throw new EntityNotFoundError(key);
    const updated = change(found.record);
    if (updated === found.record) return updated; // nothing to change
    try {
      await store.entities.update(key, updated, found.revision);
      return updated;
    } catch (error) {
      if (!(error instanceof RevisionConflictError)) throw error;
    }
  }
  throw new StoreUnavailableError(`updating "${key}" (it kept changing)`);
}
