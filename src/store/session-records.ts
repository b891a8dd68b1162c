import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { KvCompareAndSet } from "./kv-compare-and-set.js";

/**
 * Where a session's state is kept: `chunks` KV entries under `version`, or (a small state)
 * `inline` in the record itself, as base64, with `chunks` 0.
 */
export interface StatePointer {
  version: string;
  size: number;
  chunks: number;
  changedAt: number;
  inline?: string;
}

/**
 * States up to this size live in the session record: a get is then the record read alone
 * and a set one record write, instead of a chunk round trip more each. Larger ones would
 * make every record write (one per delivered group of messages) carry them.
 */
export const INLINE_STATE_MAX_BYTES = 8 * 1024;

/**
 * What sessionbus keeps per session, in one KV entry written by compare-and-set: the lock,
 * the delivery counts of messages delivered and not yet settled (persisted before they are
 * handed out, so a crash never resets them), the part of them raised under the current
 * lock, and where the state is.
 */
export interface SessionRecord {
  lock: { token: string; until: number } | null;
  counts: Record<string, number>;
  /**
   * How much of `counts` the current lock raised for deliveries not yet settled, abandoned
   * or taken back: what a close takes back. Absent in records written before it existed.
   */
  held?: Record<string, number>;
  /**
   * The highest sequence number delivered from this session, by any lock: with `counts`,
   * which messages were settled (see settledPerRecord). Absent until the first delivery
   * written by a broker that keeps it.
   */
  deliveredThrough?: number;
  state: StatePointer | null;
  lastActivity: number;
}

export interface VersionedSession {
  record: SessionRecord;
  /** KV revision for compare-and-set; 0 when the session has no record yet. */
  revision: number;
}

/** See SessionRecords.figures. */
export interface SessionRecordFigures {
  /** Session tokens of the sessions with a state. */
  withState: Set<string>;
  stateBytes: number;
  /** Sessions whose lock has not expired. */
  locked: number;
}

export function emptySessionRecord(): SessionRecord {
  return { lock: null, counts: {}, held: {}, state: null, lastActivity: 0 };
}

/** How long the figures of an entity's session records are reused. */
const FIGURES_MAX_AGE_MS = 2_000;
/** Entities whose session records are read at once. */
const SCANS_AT_ONCE = 4;
/** Records of one entity read at once (direct gets, in flight together). */
const RECORD_READS_AT_ONCE = 64;

export class SessionRecords {
  private readonly recentFigures = new Map<
    string,
    { figures: Promise<SessionRecordFigures>; at: number; pending: boolean }
  >();
  private readonly scans = new Limiter(SCANS_AT_ONCE);

  constructor(
    private readonly kv: KV,
    private readonly bucket: string,
    private readonly compareAndSet: KvCompareAndSet,
    private readonly jsm: JetStreamManager,
  ) {}

  async read(streamId: string, token: string): Promise<VersionedSession> {
    const entry = await this.kv.get(key(streamId, token));
    if (entry?.operation !== "PUT") {
      return { record: emptySessionRecord(), revision: entry?.revision ?? 0 };
    }
    return { record: entry.json<SessionRecord>(), revision: entry.revision };
  }

  /** Writes if nobody changed the record since `revision`; undefined when someone did. */
  async write(
    streamId: string,
    token: string,
    record: SessionRecord,
    revision: number,
  ): Promise<number | undefined> {
    // Through the shared reply subscription: a record is written once per delivered group
    // of messages.
    return this.compareAndSet.write(key(streamId, token), JSON.stringify(record), revision);
  }

  async remove(streamId: string, token: string): Promise<void> {
    await this.kv.purge(key(streamId, token));
  }

  /**
   * What the records of an entity add up to: the sessions with a state, the bytes of those
   * states, and how many sessions are locked. Reads every record of the entity (see
   * `scan`): the cost grows with its sessions. So the figures are kept for
   * FIGURES_MAX_AGE_MS, callers asking meanwhile share one read, and at most SCANS_AT_ONCE
   * entities are read at a time (a ListQueues of many session queues).
   */
  figures(streamId: string): Promise<SessionRecordFigures> {
    const known = this.recentFigures.get(streamId);
    if (known && (known.pending || Date.now() - known.at < FIGURES_MAX_AGE_MS)) {
      return known.figures;
    }
    const figures = this.scans.run(() => this.scan(streamId));
    const entry = { figures, at: 0, pending: true };
    this.recentFigures.set(streamId, entry);
    figures.then(
      () => {
        entry.pending = false;
        entry.at = Date.now();
        // Forgotten when it would be read again anyway: the map holds entities in use only.
        setTimeout(() => {
          if (this.recentFigures.get(streamId) === entry) this.recentFigures.delete(streamId);
        }, FIGURES_MAX_AGE_MS).unref();
      },
      () => {
        if (this.recentFigures.get(streamId) === entry) this.recentFigures.delete(streamId);
      },
    );
    return figures;
  }

  /**
   * Reads every record of the entity: their keys from one stream-info request on the
   * bucket's stream (per-subject counts), then each record by direct get, RECORD_READS_AT_ONCE
   * at a time. An ordered consumer over the keys (kv.history) costs a consumer create and
   * delete per entity, which made a ListQueues of many session queues several times slower.
   */
  private async scan(streamId: string): Promise<SessionRecordFigures> {
    const now = Date.now();
    const withState = new Set<string>();
    let stateBytes = 0;
    let locked = 0;
    const info = await this.jsm.streams.info(`KV_${this.bucket}`, {
      subjects_filter: `$KV.${this.bucket}.${streamId}.*`,
    });
    const prefix = `$KV.${this.bucket}.${streamId}.`;
    const tokens = Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
    for (let i = 0; i < tokens.length; i += RECORD_READS_AT_ONCE) {
      const slice = tokens.slice(i, i + RECORD_READS_AT_ONCE);
      const entries = await Promise.all(slice.map((token) => this.kv.get(key(streamId, token))));
      entries.forEach((entry, j) => {
        if (entry?.operation !== "PUT") return;
        const record = entry.json<SessionRecord>();
        if (record.state) {
          withState.add(slice[j] as string);
          stateBytes += record.state.size;
        }
        if (record.lock && record.lock.until > now) locked++;
      });
    }
    return { withState, stateBytes, locked };
  }

  /** Session tokens of every record of the entity. */
  async tokens(streamId: string): Promise<string[]> {
    const found: string[] = [];
    for await (const k of await this.kv.keys(`${streamId}.*`))
      found.push(k.slice(streamId.length + 1));
    return found;
  }
}

function key(streamId: string, token: string): string {
  return `${streamId}.${token}`;
}

/** Runs at most `limit` tasks at once; the others wait their turn, first come first served. */
class Limiter {
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) {
      await new Promise<void>((resolve) => this.queue.push(resolve));
    } else this.running++;
    try {
      return await task();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.running--;
    }
  }
}
