import type { Store } from "../../store/store.js";
import { resolveDeadLetterPair } from "./dead-letter-source.js";

/**
 * Removes every message of a queue's or subscription's dead-letter queue (its active and
 * its deferred ones); returns how many. A receiver holding a lock on one finds it gone when
 * it settles (MESSAGE_LOCK_LOST).
 */
export async function purgeDeadLettered(store: Store, path: string): Promise<bigint> {
  const { deadLetter } = await resolveDeadLetterPair(store, path);
  return BigInt(await store.messages.purge(deadLetter.streamId));
}
