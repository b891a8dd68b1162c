import type { KV } from "@nats-io/kv";
import type { PipelinedRequests } from "./pipelined-requests.js";
import { publishToStream } from "./stream-publish.js";

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

export class SessionRecords {
  constructor(
    private readonly kv: KV,
    private readonly bucket: string,
    private readonly requests: PipelinedRequests,
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
    const k = key(streamId, token);
    const data = JSON.stringify(record);
    try {
      if (revision === 0) return await this.kv.create(k, data);
      // What kv.update publishes, through the shared reply subscription: a record is
      // written once per delivered group of messages.
      const ack = await publishToStream(this.requests, `$KV.${this.bucket}.${k}`, data, {
        expectLastSubjectSequence: revision,
      });
      return ack.seq;
    } catch (error) {
      if (isConflict(error)) return undefined;
      throw error;
    }
  }

  async remove(streamId: string, token: string): Promise<void> {
    await this.kv.purge(key(streamId, token));
  }

  /**
   * What the records of an entity add up to: the sessions with a state, the bytes of those
   * states, and how many sessions are locked now. Reads every record of the entity (one
   * consumer, the records streamed; the bucket keeps one revision per key).
   */
  async figures(streamId: string): Promise<SessionRecordFigures> {
    const now = Date.now();
    const withState = new Set<string>();
    let stateBytes = 0;
    let locked = 0;
    for await (const entry of await this.kv.history({ key: `${streamId}.*` })) {
      if (entry.operation !== "PUT") continue;
      const record = entry.json<SessionRecord>();
      if (record.state) {
        withState.add(entry.key.slice(streamId.length + 1));
        stateBytes += record.state.size;
      }
      if (record.lock && record.lock.until > now) locked++;
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

// A failed compare-and-set comes back as "wrong last sequence" (10071) or, for create, as
// "key exists".
function isConflict(error: unknown): boolean {
  const text = error instanceof Error ? error.message : String(error);
  return /wrong last sequence|key exists|10071/i.test(text);
}
