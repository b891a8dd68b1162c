import type { KV } from "@nats-io/kv";
import { watchBucket } from "./bucket-watch.js";
import type { EntityKind, EntityRecord } from "./entity-record.js";
import type { KvCompareAndSet } from "./kv-compare-and-set.js";

/** A record with the KV revision it was read at, for compare-and-set updates. */
export interface VersionedEntity {
  record: EntityRecord;
  revision: number;
}

/**
 * The entity registry: one KV entry per entity, keyed by its lower-cased name. A watch keeps
 * a local copy so the hot paths (send, receive) look entities up without a round trip; a
 * miss falls back to a read, since another broker may have created the entity a moment ago.
 */
export class EntityRegistry {
  private readonly cache = new Map<string, VersionedEntity>();
  /** Keys of the subscriptions of each topic, by topic key (from the same local copy). */
  private readonly subscriptionKeys = new Map<string, Set<string>>();
  private stopWatch: (() => void) | undefined;

  constructor(
    private readonly kv: KV,
    private readonly compareAndSet: KvCompareAndSet,
  ) {}

  /** Starts the watch and waits until the local copy holds every existing entity. */
  async startWatching(): Promise<void> {
    this.stopWatch = await watchBucket(this.kv, (entry) => {
      const name = decodeKey(entry.key);
      if (entry.operation === "PUT") {
        this.remember(name, { record: entry.json<EntityRecord>(), revision: entry.revision });
      } else {
        this.forget(name);
      }
    });
  }

  stop(): void {
    this.stopWatch?.();
  }

  /** Adds a new entity; false when one with that key exists. */
  async create(key: string, record: EntityRecord): Promise<boolean> {
    const revision = await this.compareAndSet.create(
      this.kv,
      encodeKey(key),
      JSON.stringify(record),
    );
    if (revision === undefined) return false;
    this.remember(key, { record, revision });
    return true;
  }

  async get(key: string): Promise<VersionedEntity | undefined> {
    const cached = this.cache.get(key);
    if (cached) return cached;
    return this.read(key);
  }

  /** Reads from the bucket, bypassing the local copy. */
  async read(key: string): Promise<VersionedEntity | undefined> {
    const entry = await this.kv.get(encodeKey(key));
    if (entry?.operation !== "PUT") return undefined;
    const found = { record: entry.json<EntityRecord>(), revision: entry.revision };
    this.remember(key, found);
    return found;
  }

  /** Compare-and-set: fails when the entity changed since `revision`. */
  async update(key: string, record: EntityRecord, revision: number): Promise<void> {
    const next = await this.compareAndSet.update(encodeKey(key), JSON.stringify(record), revision);
    this.remember(key, { record, revision: next });
  }

  async remove(key: string): Promise<void> {
    await this.kv.purge(encodeKey(key));
    this.forget(key);
  }

  /** The subscriptions of a topic as this process knows them, from the local copy. */
  subscriptionsOf(topicKey: string): EntityRecord[] {
    const keys = this.subscriptionKeys.get(topicKey);
    if (!keys) return [];
    return [...keys].flatMap((key) => {
      const found = this.cache.get(key);
      return found ? [found.record] : [];
    });
  }

  private remember(key: string, found: VersionedEntity): void {
    const known = this.cache.get(key);
    // The watch may replay an older revision after a local write: keep the newer one.
    if (known && known.revision > found.revision) return;
    this.cache.set(key, found);
    const topicKey = found.record.link?.topicKey;
    if (topicKey !== undefined) {
      let keys = this.subscriptionKeys.get(topicKey);
      if (!keys) {
        keys = new Set();
        this.subscriptionKeys.set(topicKey, keys);
      }
      keys.add(key);
    }
  }

  private forget(key: string): void {
    const topicKey = this.cache.get(key)?.record.link?.topicKey;
    this.cache.delete(key);
    if (topicKey !== undefined) this.subscriptionKeys.get(topicKey)?.delete(key);
  }

  /** Every entity in the local copy. */
  records(): EntityRecord[] {
    return [...this.cache.values()].map((found) => found.record);
  }

  /** The keys of every entity of one kind, sorted, from the watched local copy. */
  keys(kind: EntityKind): string[] {
    return [...this.cache]
      .filter(([, found]) => found.record.kind === kind)
      .map(([key]) => key)
      .sort();
  }
}

// Entity names may hold characters KV keys cannot (and "." splits KV keys), so keys are
// base64url of the lower-cased name.
function encodeKey(key: string): string {
  return Buffer.from(key, "utf8").toString("base64url");
}

function decodeKey(encoded: string): string {
  return Buffer.from(encoded, "base64url").toString("utf8");
}
