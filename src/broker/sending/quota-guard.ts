import { deadLetterStreamId } from "../../store/entity-record.js";
import type { Store } from "../../store/store.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { QuotaExceededError } from "../errors.js";

/** How stale the stored-bytes figure of an entity may be before a send reads it again. */
const REFRESH_MS = 1000;

/**
 * Enforces max_size_bytes on send. JetStream's own max_bytes would reserve the whole quota
 * on disk for every stream, so the broker checks instead, against a figure at most a second
 * old: one stream-info round trip per entity per second, not one per send. A burst within
 * that second may overshoot the quota by what it sends.
 */
export class QuotaGuard {
  private readonly sizes = new Map<
    string,
    { bytes: number; at: number; pending?: Promise<number> }
  >();

  constructor(private readonly store: Store) {}

  /** A topic is full when any of its subscriptions is (each gets max_size_bytes). */
  async check(entity: ResolvedEntity): Promise<void> {
    const limit = entity.record.settings.maxSizeBytes;
    const holders =
      entity.record.kind === "topic"
        ? this.store.entities.subscriptionsOf(entity.address.parentKey)
        : [entity.record];
    const sizes = await Promise.all(holders.map((h) => this.storedBytes(h.streamId)));
    const full = sizes.findIndex((bytes) => bytes >= limit);
    if (full >= 0) {
      throw new QuotaExceededError(holders[full]?.name ?? entity.address.path);
    }
  }

  private async storedBytes(streamId: string): Promise<number> {
    const known = this.sizes.get(streamId);
    if (known && Date.now() - known.at < REFRESH_MS) return known.bytes;
    if (known?.pending) return known.pending;
    const pending = Promise.all([
      this.store.messages.storedBytes(streamId),
      this.store.messages.storedBytes(deadLetterStreamId(streamId)),
    ]).then(([main, dead]) => main + dead);
    this.sizes.set(streamId, { bytes: known?.bytes ?? 0, at: known?.at ?? 0, pending });
    try {
      const bytes = await pending;
      this.sizes.set(streamId, { bytes, at: Date.now() });
      return bytes;
    } catch (error) {
      this.sizes.delete(streamId);
      throw error;
    }
  }
}
