import type { KV } from "@nats-io/kv";
import type { PipelinedRequests } from "./pipelined-requests.js";
import { publishToStream } from "./stream-publish.js";

/** What a writer whose expected revision was no longer the last is told. */
export class RevisionConflictError extends Error {
  override readonly name = "RevisionConflictError";
  constructor(key: string, revision: number) {
    super(`wrong last sequence: "${key}" is no longer at revision ${revision}`);
  }
}

/**
 * Compare-and-set writes of one KV bucket's entries, exact on a replicated bucket too.
 *
 * kv.create and kv.update alone are not, on nats-server 2.9.10 with replicas: the leader
 * checks a publish's Nats-Expected-Last-Subject-Sequence against what the stream has
 * applied, not against what it has already proposed, so two writers expecting the same
 * revision both succeed when their publishes arrive together. Measured on a 3-node cluster:
 * of 200 such pairs, 197 had both writes stored with 3 replicas, 0 with 1; in the broker, a
 * session's delivery counts were overwritten (two receive streams under one lock), and a
 * session lock could be taken twice. The duplicate window is checked when a write is
 * proposed: so each write also carries the message id `<revision>:<subject>`, the same for
 * every writer expecting that revision, and the stream stores the first and answers the
 * others as duplicates (0 of 200 pairs both stored). A duplicate is a conflict here.
 * With one replica the expectation alone is exact, and the id is left out: it would cost
 * the server an entry in the duplicate window for each write.
 */
export class KvCompareAndSet {
  constructor(
    private readonly requests: PipelinedRequests,
    private readonly bucket: string,
    private readonly replicated: boolean,
  ) {}

  /**
   * Writes `data` as `key`'s next revision if its last revision is still `revision` (0:
   * never written). Resolves with the new revision, or undefined when another writer got in
   * first.
   */
  async write(key: string, data: string, revision: number): Promise<number | undefined> {
    const subject = `$KV.${this.bucket}.${key}`;
    try {
      const ack = await publishToStream(this.requests, subject, data, {
        expectLastSubjectSequence: revision,
        ...(this.replicated ? { msgId: `${revision}:${subject}` } : {}),
      });
      return ack.duplicate ? undefined : ack.seq;
    } catch (error) {
      if (isConflict(error)) return undefined;
      throw error;
    }
  }

  /** write(), throwing RevisionConflictError instead of resolving undefined. */
  async update(key: string, data: string, revision: number): Promise<number> {
    const next = await this.write(key, data, revision);
    if (next === undefined) throw new RevisionConflictError(key, revision);
    return next;
  }

  /**
   * Writes `data` as a new entry: `key` never written, or deleted or purged since. Resolves
   * undefined when it holds a value (also one another writer has just stored).
   */
  async create(kv: KV, key: string, data: string): Promise<number | undefined> {
    const entry = await kv.get(key);
    if (entry?.operation === "PUT") return undefined;
    return this.write(key, data, entry?.revision ?? 0);
  }
}

/** JetStream's refusal of an expected last subject sequence (10071). */
function isConflict(error: unknown): boolean {
  const text = error instanceof Error ? error.message : String(error);
  return /wrong last sequence|10071/i.test(text);
}
