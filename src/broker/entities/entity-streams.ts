import { deadLetterStreamId, type EntityRecord } from "../../store/entity-record.js";
import type { SessionRecordFigures } from "../../store/session-records.js";
import type { Store } from "../../store/store.js";
import { QuotaExceededError, StoreUnavailableError } from "../errors.js";
import { layoutOf } from "./entity-resolver.js";

/** Figures of a queue or subscription at the time of asking. */
export interface EntityRuntime {
  activeMessageCount: number;
  deferredMessageCount: number;
  scheduledMessageCount: number;
  deadLetterMessageCount: number;
  /** Bytes of the entity's messages, its dead-letter queue's and its sessions' states. */
  sizeBytes: number;
  /** Sessions with a message or a state (0 on entities without sessions). */
  sessionCount: number;
  /** Sessions whose lock is held now. */
  lockedSessionCount: number;
}

/** What the sessions of an entity add to its figures. */
export interface SessionFigures {
  sessionCount: number;
  lockedSessionCount: number;
  /** Bytes of the sessions' states, which count towards max_size_bytes. */
  stateBytes: number;
}

const NO_SESSIONS: SessionFigures = { sessionCount: 0, lockedSessionCount: 0, stateBytes: 0 };

/**
 * The sessions of a session-enabled queue or subscription: those with an active message
 * (one stream-info request, per-subject counts, cached as the stream's figures are) or a
 * state, the locked ones, and the bytes of their states (every session record read, kept
 * for a while: the cost grows with the number of sessions).
 */
export async function sessionFigures(store: Store, record: EntityRecord): Promise<SessionFigures> {
  if (!record.settings.requiresSession) return NO_SESSIONS;
  const [counts, records] = await Promise.all([
    store.messages.recentSessionMessageCounts(layoutOf(record, false), record.link?.topicStreamId),
    store.sessions.figures(record.streamId),
  ]);
  // Both reads are cached (the same objects until read again): so is what they add up to,
  // which GetQueue of a busy session queue would otherwise build on every call.
  const known = summedFigures.get(counts);
  if (known?.records === records) return known.figures;
  const sessions = new Set(records.withState);
  for (const [token, count] of counts) if (count > 0) sessions.add(token);
  const figures = {
    sessionCount: sessions.size,
    lockedSessionCount: records.locked,
    stateBytes: records.stateBytes,
  };
  summedFigures.set(counts, { records, figures });
  return figures;
}

const summedFigures = new WeakMap<
  Map<string, number>,
  { records: SessionRecordFigures; figures: SessionFigures }
>();

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
  const [main, dead, sessions] = await Promise.all([
    store.messages.figures(record.streamId, record.link?.topicStreamId),
    store.messages.totals(deadLetterStreamId(record.streamId)),
    sessionFigures(store, record),
  ]);
  return {
    activeMessageCount: main.messages - main.deferred - main.scheduled,
    deferredMessageCount: main.deferred,
    scheduledMessageCount: main.scheduled,
    deadLetterMessageCount: dead.messages,
    sizeBytes: main.bytes + dead.bytes + sessions.stateBytes,
    sessionCount: sessions.sessionCount,
    lockedSessionCount: sessions.lockedSessionCount,
  };
}
