import { deadLetterStreamId, type EntityRecord } from "../../store/entity-record.js";
import type { Store } from "../../store/store.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { QuotaExceededError } from "../errors.js";

/** How stale the stored-bytes figure of an entity may be before a send reads it again. */
const REFRESH_MS = 1000;
/**
 * How stale the session-state bytes of a session entity may be: reading them means reading
 * every session record of the entity, far more than the one stream info of the messages.
 */
const STATE_REFRESH_MS = 10_000;

interface Figure {
  bytes: number;
  at: number;
  pending?: Promise<number>;
}

/**
 * Enforces max_size_bytes on send (and on setting a session state). JetStream's own
 * max_bytes would reserve the whole quota on disk for every stream, so the broker checks
 * instead, against the bytes of the entity's messages and its dead-letter queue's at most a
 * second old (one stream-info round trip per entity per second, not one per send), plus
 * the bytes of its sessions' states at most ten seconds old. A burst within that time may
 * overshoot the quota by what it stores.
 */
export class QuotaGuard {
  private readonly messageBytes = new Map<string, Figure>();
  private readonly stateBytes = new Map<string, Figure>();

  constructor(private readonly store: Store) {}

  /** A topic is full when any of its subscriptions is (each gets max_size_bytes). */
  async check(entity: ResolvedEntity): Promise<void> {
    const limit = entity.record.settings.maxSizeBytes;
    const holders =
      entity.record.kind === "topic"
        ? this.store.entities.subscriptionsOf(entity.address.parentKey)
        : [entity.record];
    const sizes = await Promise.all(holders.map((h) => this.storedBytes(h)));
    const full = sizes.findIndex((bytes) => bytes >= limit);
    if (full >= 0) {
      throw new QuotaExceededError(holders[full]?.name ?? entity.address.path);
    }
  }

  private async storedBytes(record: EntityRecord): Promise<number> {
    const { streamId } = record;
    const [messages, states] = await Promise.all([
      cached(this.messageBytes, streamId, REFRESH_MS, async () => {
        const [main, dead] = await Promise.all([
          this.store.messages.storedBytes(streamId),
          this.store.messages.storedBytes(deadLetterStreamId(streamId)),
        ]);
        return main + dead;
      }),
      record.settings.requiresSession
        ? cached(
            this.stateBytes,
            streamId,
            STATE_REFRESH_MS,
            async () => (await this.store.sessions.figures(streamId)).stateBytes,
          )
        : 0,
    ]);
    return messages + states;
  }
}

/** The figure kept under `key` if younger than `maxAgeMs`, else read again (once at a time). */
async function cached(
  figures: Map<string, Figure>,
  key: string,
  maxAgeMs: number,
  read: () => Promise<number>,
): Promise<number> {
  const known = figures.get(key);
  if (known && Date.now() - known.at < maxAgeMs) return known.bytes;
  if (known?.pending) return known.pending;
  const pending = read();
  figures.set(key, { bytes: known?.bytes ?? 0, at: known?.at ?? 0, pending });
  try {
    const bytes = await pending;
    figures.set(key, { bytes, at: Date.now() });
    return bytes;
  } catch (error) {
    figures.delete(key);
    throw error;
  }
}
