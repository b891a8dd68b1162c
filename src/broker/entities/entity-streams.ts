import { deadLetterStreamId, type EntityRecord } from "../../store/entity-record.js";
import type { Store } from "../../store/store.js";
import { QuotaExceededError, StoreUnavailableError } from "../errors.js";
import { layoutOf } from "./entity-resolver.js";

/** Figures of a queue or subscription at the time of asking. */
export interface EntityRuntime {
  activeMessageCount: number;
  deferredMessageCount: number;
  scheduledMessageCount: number;
  deadLetterMessageCount: number;
  sizeBytes: number;
}

/**
 * The JetStream side of an entity that holds messages (queue or subscription): its stream
 * and receivers' consumer, the accept-next index when it requires sessions, and its
 * dead-letter stream. A subscription's stream sources its slot of the topic stream.
 */
export async function ensureEntityStreams(store: Store, record: EntityRecord): Promise<void> {
  const source = record.link
    ? { topicStreamId: record.link.topicStreamId, slot: record.link.slot }
    : undefined;
  await store.messages.ensure(layoutOf(record, false), record.settings, source);
  if (record.settings.requiresSession) {
    await store.sessionIndex.ensure(record.streamId, record.settings.lockDurationMs);
  }
  await store.messages.ensure(layoutOf(record, true), {
    ...record.settings,
    requiresSession: false,
    requiresDuplicateDetection: false,
  });
}

/**
 * Makes the streams of an entity whose record was just stored. When that fails, the record,
 * the streams made so far and whatever `undo` names are removed again, and the failure is
 * thrown as the quota (JetStream out of resources) or as the store's while `creating`, with
 * the servers missing for the replicas when that is why.
 */
export async function ensureStreamsOrUndo(
  store: Store,
  key: string,
  record: EntityRecord,
  streams: {
    ensure(record: EntityRecord): Promise<void>;
    remove(record: EntityRecord): Promise<void>;
  },
  creating: string,
  undo: () => Promise<void> = async () => undefined,
): Promise<void> {
  try {
    await streams.ensure(record);
  } catch (error) {
    await store.entities.remove(key).catch(() => undefined);
    await streams.remove(record).catch(() => undefined);
    await undo().catch(() => undefined);
    if (/insufficient|resources/i.test(String(error))) {
      throw new QuotaExceededError(record.name, { cause: error });
    }
    // With replicas, a server down makes JetStream refuse (or never answer) the creation.
    const why = await store.missingReplicas().catch(() => undefined);
    throw new StoreUnavailableError(creating, { cause: error }, why);
  }
}

export async function removeEntityStreams(store: Store, record: EntityRecord): Promise<void> {
  await store.messages.remove(record.streamId);
  await store.sessionIndex.remove(record.streamId);
  await store.messages.remove(deadLetterStreamId(record.streamId));
}

/**
 * The figures of an entity, from the store's cache: exact after a write through this process,
 * at most FIGURES_MAX_AGE_MS behind writes through others (docs/architecture.md, "Runtime
 * figures").
 */
export async function entityRuntime(store: Store, record: EntityRecord): Promise<EntityRuntime> {
  const [main, dead] = await Promise.all([
    store.messages.figures(record.streamId, record.link?.topicStreamId),
    store.messages.totals(deadLetterStreamId(record.streamId)),
  ]);
  return {
    activeMessageCount: main.messages - main.deferred - main.scheduled,
    deferredMessageCount: main.deferred,
    scheduledMessageCount: main.scheduled,
    deadLetterMessageCount: dead.messages,
    sizeBytes: main.bytes + dead.bytes,
  };
}
