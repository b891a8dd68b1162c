import type { KV } from "@nats-io/kv";
import type { KvCompareAndSet } from "./kv-compare-and-set.js";

/** Lock and delivery count of a deferred message, shared by every broker process. */
export interface DeferredLock {
  token: string;
  lockedUntil: number;
  deliveryCount: number;
}

/**
 * Deferred messages are fetched by sequence number, outside any consumer, so their locks
 * and delivery counts live in a KV bucket (one key per message) and are taken by
 * compare-and-set. Deferral is rare, so a round trip per operation is fine here.
 */
export class DeferredLocks {
  constructor(
    private readonly kv: KV,
    private readonly compareAndSet: KvCompareAndSet,
  ) {}

  async read(
    streamId: string,
    sequence: number,
  ): Promise<{ lock?: DeferredLock; revision: number }> {
    const entry = await this.kv.get(key(streamId, sequence));
    if (entry?.operation !== "PUT") return { revision: entry?.revision ?? 0 };
    return { lock: entry.json<DeferredLock>(), revision: entry.revision };
  }

  /** Writes the lock if nobody changed it since `revision` (0: it must not exist). */
  async write(
    streamId: string,
    sequence: number,
    lock: DeferredLock,
    revision: number,
  ): Promise<number | undefined> {
    // Undefined: another receiver got there first.
    return this.compareAndSet.write(key(streamId, sequence), JSON.stringify(lock), revision);
  }

  async remove(streamId: string, sequence: number): Promise<void> {
    await this.kv.purge(key(streamId, sequence));
  }
}

function key(streamId: string, sequence: number): string {
  return `${streamId}.${sequence}`;
}
