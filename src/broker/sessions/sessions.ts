import { randomUUID } from "node:crypto";
import type { MessageReader } from "../../store/message-streams.js";
import { isConsumerDeleted } from "../../store/pull-errors.js";
import type { SessionOffer } from "../../store/session-index.js";
import { INLINE_STATE_MAX_BYTES, type SessionRecord } from "../../store/session-records.js";
import type { Store } from "../../store/store.js";
import { sessionToken } from "../../store/subjects.js";
import { metricsOf } from "../broker-metrics.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import {
  NotSessionEntityError,
  SessionCannotBeLockedError,
  SessionLockLostError,
  SessionRequiredError,
  SessionStateTooLargeError,
} from "../errors.js";
import { checkCharacterLimit } from "../limits/character-limits.js";
import { MAX_LOCK_TOKEN_LENGTH } from "../limits/request-list-limits.js";
import type { SessionHandle } from "../locks/lock-handles.js";
import type { MessageLocks } from "../locks/message-locks.js";
import { expireSessionOnAccept } from "../messages/expiry.js";
import { checkSessionId } from "../messages/message-validation.js";
import type { IndexedSessions } from "../sending/sender.js";
import {
  dropSettled,
  keepCount,
  startLock,
  takeBackCount,
  takeBackHeld,
} from "./delivery-counts.js";
import { updateSessionRecord } from "./session-record-update.js";

/** A session lock named by a request. */
export interface SessionRef {
  sessionId: string;
  lockToken: string;
}

export interface AcceptedSession {
  sessionId: string;
  lockToken: string;
  lockedUntil: number;
}

/** @default 60_000 — how long accept-next waits for a session when the request says nothing. */
export const DEFAULT_ACCEPT_WAIT_MS = 60_000;
/**
 * The longest single pull of the accept-next index; accept-next pulls again until its
 * wait ends. A suspected cause, not a measured one: cluster tests saw receivers stall for
 * 50–180 s after nats-servers were restarted, about one accept-next wait (60 s) or more.
 */
const INDEX_PULL_MS = 5_000;

/**
 * Session locks (semantics §4): accept, renew, close, state. The lock lives in the
 * session's KV record and is taken by compare-and-set, so broker processes sharing one NATS
 * never hand a session to two holders; a holder that dies loses it by expiry. Each process
 * keeps handles of the locks it gave out, with the session's consumer.
 */
/** How often, and how far apart, accept-next looks again at a subscription session found empty. */
const SOURCING_RETRIES = 5;
const SOURCING_RETRY_MS = 20;

export class Sessions implements IndexedSessions {
  private readonly handles = new Map<string, SessionHandle>();
  /** The same handles by session (stream id and session token). */
  private readonly bySession = new Map<string, SessionHandle>();

  constructor(
    private readonly store: Store,
    private readonly locks: MessageLocks,
  ) {}

  /** Locks the named session, or the next available one (undefined if none in time). */
  async accept(
    entity: ResolvedEntity,
    sessionId: string | undefined,
    maxWaitMs: number,
    signal: AbortSignal,
  ): Promise<AcceptedSession | undefined> {
    requireSessionEntity(entity);
    if (sessionId !== undefined) {
      checkSessionId(sessionId, "session_id", entity.address.path);
      const token = sessionToken(sessionId);
      const taken = await this.tryLock(entity, token);
      if (typeof taken === "number") {
        throw new SessionCannotBeLockedError(entity.address.path, sessionId, taken);
      }
      return this.open(entity, sessionId, token, taken, undefined);
    }
    return this.acceptNext(entity, maxWaitMs, signal);
  }

  /** Extends the lock by the entity's lock_duration; returns the new expiry. */
  async renew(entity: ResolvedEntity, ref: SessionRef | undefined): Promise<number> {
    const handle = await this.handle(entity, ref);
    const lockedUntil = Date.now() + entity.settings.lockDurationMs;
    // Kept as the receive stream's copy of the record: its next delivery write then starts
    // from the renewed lock instead of failing a compare-and-set first.
    handle.known = await updateSessionRecord(
      this.store,
      entity.streamId,
      handle.token,
      (record) => {
        this.checkHeld(handle, record);
        record.lock = { token: handle.lockToken, until: lockedUntil };
        record.lastActivity = Date.now();
        return record;
      },
    );
    handle.lockedUntil = lockedUntil;
    handle.offer?.keep();
    return lockedUntil;
  }

  /**
   * Releases the lock. Messages delivered and unsettled go to the next holder with their
   * delivery count unchanged: every count the lock raised and nothing made final (the
   * record's `held`, see delivery-counts.ts) is taken back in the same write that frees the
   * lock, and deleting the session's consumer makes them come again, in order.
   */
  async close(entity: ResolvedEntity, ref: SessionRef | undefined): Promise<void> {
    await this.unlock(await this.handle(entity, ref));
  }

  /** Frees the lock as a close does; throws SESSION_LOCK_LOST if it is no longer held. */
  private async unlock(handle: SessionHandle): Promise<void> {
    await updateSessionRecord(this.store, handle.streamId, handle.token, (record) => {
      this.checkHeld(handle, record);
      record.lock = null;
      record.lastActivity = Date.now();
      dropSettled(record, handle.settled);
      takeBackHeld(record);
      return record;
    });
    await this.release(handle);
  }

  async getState(
    entity: ResolvedEntity,
    ref: SessionRef | undefined,
  ): Promise<Uint8Array | undefined> {
    const handle = await this.handle(entity, ref);
    const { record } = await this.store.sessions.read(entity.streamId, handle.token);
    this.checkHeld(handle, record);
    const pointer = record.state;
    if (!pointer) return undefined;
    if (pointer.inline !== undefined) return Buffer.from(pointer.inline, "base64");
    return this.store.sessionState.get(
      entity.streamId,
      handle.token,
      pointer.version,
      pointer.chunks,
      pointer.size,
    );
  }

  /**
   * The state without the lock (PeekSessionState). A holder may replace it meanwhile and
   * remove the chunks of the version read: the record is then read again.
   */
  async peekState(entity: ResolvedEntity, sessionId: string): Promise<Uint8Array | undefined> {
    requireSessionEntity(entity);
    checkSessionId(sessionId, "session_id", entity.address.path);
    const token = sessionToken(sessionId);
    for (let attempt = 1; ; attempt++) {
      const pointer = (await this.store.sessions.read(entity.streamId, token)).record.state;
      if (!pointer) return undefined;
      if (pointer.inline !== undefined) return Buffer.from(pointer.inline, "base64");
      try {
        return await this.store.sessionState.get(
          entity.streamId,
          token,
          pointer.version,
          pointer.chunks,
          pointer.size,
        );
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  }

  /**
   * Replaces the state (undefined clears it); the old state stays if anything fails.
   * `checkQuota` runs before a non-empty state is written (states count towards
   * max_size_bytes).
   */
  async setState(
    entity: ResolvedEntity,
    ref: SessionRef | undefined,
    state: Uint8Array | undefined,
    checkQuota: () => Promise<void> = async () => undefined,
  ): Promise<void> {
    const handle = await this.handle(entity, ref);
    const limit = entity.settings.maxSessionStateSizeBytes;
    if (state && state.length > limit) {
      throw new SessionStateTooLargeError(
        entity.address.path,
        handle.sessionId,
        state.length,
        limit,
      );
    }
    if (state && state.length > 0) await checkQuota();
    const version = randomUUID().replaceAll("-", "");
    const inline =
      state && state.length <= INLINE_STATE_MAX_BYTES
        ? Buffer.from(state).toString("base64")
        : undefined;
    const chunks =
      state && inline === undefined
        ? await this.store.sessionState.put(entity.streamId, handle.token, version, state)
        : 0;
    let previous: SessionRecord["state"] = null;
    try {
      await updateSessionRecord(this.store, entity.streamId, handle.token, (record) => {
        this.checkHeld(handle, record);
        previous = record.state;
        const now = Date.now();
        record.state = state
          ? { version, size: state.length, chunks, changedAt: now, ...(inline ? { inline } : {}) }
          : null;
        record.lastActivity = now;
        return record;
      });
    } catch (error) {
      if (chunks > 0)
        await this.store.sessionState.remove(entity.streamId, handle.token, version, chunks);
      throw error;
    }
    const old = previous as SessionRecord["state"];
    if (old && old.chunks > 0)
      await this.store.sessionState.remove(entity.streamId, handle.token, old.version, old.chunks);
  }

  /**
   * The handle of a lock named by a request, checked: this process's own, or one opened
   * from the record when the session was accepted through another broker process.
   */
  async handle(entity: ResolvedEntity, ref: SessionRef | undefined): Promise<SessionHandle> {
    if (!ref) throw new SessionRequiredError(entity.address.path);
    requireSessionEntity(entity);
    const path = entity.address.path;
    // Before any lookup: a session id far over the limit makes a KV key NATS cannot carry.
    checkSessionId(ref.sessionId, "session.session_id", path);
    checkCharacterLimit(ref.lockToken, MAX_LOCK_TOKEN_LENGTH, "session.lock_token", {
      entityPath: path,
    });
    const local = this.handles.get(ref.lockToken);
    if (local) {
      if (local.entity !== entity.identity || local.sessionId !== ref.sessionId) {
        throw new SessionLockLostError(
          path,
          ref.sessionId,
          "the lock token belongs to another session",
        );
      }
      if (local.lockedUntil > Date.now()) return local;
    }
    const token = sessionToken(ref.sessionId);
    const { record } = await this.store.sessions.read(entity.streamId, token);
    if (record.lock?.token !== ref.lockToken || record.lock.until <= Date.now()) {
      if (local) await this.lost(local);
      throw new SessionLockLostError(path, ref.sessionId, lockLostWhy(record, ref.lockToken));
    }
    if (local) {
      local.lockedUntil = record.lock.until; // renewed through another process
      return local;
    }
    const reader = await this.sessionReader(entity, ref.sessionId);
    return this.remember(
      entity,
      ref.sessionId,
      token,
      ref.lockToken,
      record.lock.until,
      reader,
      undefined,
    );
  }

  /**
   * The consumer of a session held through another broker process. A restarted
   * nats-server has lost it (session consumers live in memory): it is made again, so the
   * unsettled messages come again in order, as after an abandon.
   */
  private async sessionReader(entity: ResolvedEntity, sessionId: string): Promise<MessageReader> {
    try {
      return await this.store.messages.sessionReader(entity.streamId, sessionId);
    } catch (error) {
      if (!isConsumerDeleted(error)) throw error;
      return (await this.store.messages.openSessionConsumer(entity.layout, sessionId)).reader;
    }
  }

  /**
   * Throws SESSION_LOCK_LOST unless `record` still shows the handle's lock, unexpired. Only
   * a `fresh` record (just read) ends the lock here; a copy kept from an earlier write may
   * be older than a renewal (updateSessionRecord then reads the record and asks again).
   */
  checkHeld(handle: SessionHandle, record: SessionRecord, fresh = true): void {
    if (holds(handle, record)) return;
    if (fresh) void this.lost(handle);
    throw new SessionLockLostError(
      handle.entityPath,
      handle.sessionId,
      lockLostWhy(record, handle.lockToken),
    );
  }

  /**
   * Abandon under a session lock: the abandoned message must be the next delivered, and
   * every later one after it in order. All other unsettled deliveries of this process are
   * recalled (their counts taken back: for them nothing happened), and the session's
   * consumer is recreated so JetStream hands out the unsettled messages again from the
   * lowest sequence number. The abandoned ones keep their incremented counts (+1).
   */
  async abandon(
    entity: ResolvedEntity,
    handle: SessionHandle,
    abandoned: Set<string>,
  ): Promise<void> {
    handle.generation++;
    const recalled = [...handle.inflight].filter((lock) => !abandoned.has(lock.token));
    const kept = [...handle.inflight].filter((lock) => abandoned.has(lock.token));
    handle.known = await updateSessionRecord(
      this.store,
      entity.streamId,
      handle.token,
      (record) => {
        this.checkHeld(handle, record);
        for (const lock of recalled) takeBackCount(record, Number(lock.message.sequenceNumber));
        for (const lock of kept) keepCount(record, Number(lock.message.sequenceNumber));
        return record;
      },
    );
    for (const lock of recalled) {
      handle.inflight.delete(lock);
      this.locks.drop(lock);
    }
    // The abandoned ones are no longer in flight either: the new consumer hands them out
    // again, and a delivery of a message in flight would be dropped (see the admit step).
    for (const lock of kept) handle.inflight.delete(lock);
    // Pulls from here on wait for the new consumer; the running one is stopped.
    const reopened = this.store.messages.openSessionConsumer(entity.layout, handle.sessionId);
    reopened.catch(() => undefined);
    handle.reader = {
      fetch: async (max, expiresMs) => (await reopened).reader.fetch(max, expiresMs),
    };
    handle.interrupt?.();
    await reopened;
    // Announced even when empty: it marks where the stream's deliveries are valid again.
    handle.onRecall?.(recalled.map((lock) => lock.token));
  }

  /**
   * Takes back the counts of deliveries voided before they were handed out, while the lock
   * is still this handle's (a close took them back already; after an expiry they stay).
   */
  async uncount(entity: ResolvedEntity, handle: SessionHandle, seqs: number[]): Promise<void> {
    await updateSessionRecord(this.store, entity.streamId, handle.token, (record) => {
      if (!holds(handle, record)) return null;
      for (const seq of seqs) takeBackCount(record, seq);
      return record;
    });
  }

  /**
   * Shutdown: closes every session this process holds, so other brokers can take them at
   * once instead of after lock expiry. What cannot be closed simply expires.
   */
  async closeAll(): Promise<void> {
    const held = [...this.handles.values()];
    await Promise.allSettled(held.map((handle) => this.unlock(handle)));
    this.handles.clear();
  }

  private async acceptNext(
    entity: ResolvedEntity,
    maxWaitMs: number,
    signal: AbortSignal,
  ): Promise<AcceptedSession | undefined> {
    const deadline = Date.now() + (maxWaitMs || DEFAULT_ACCEPT_WAIT_MS);
    while (!signal.aborted) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      // One pull waits at most INDEX_PULL_MS: a pull lost with its consumer's leader (a
      // nats-server stopped) would otherwise hold this accept for all of `left`.
      const offer = await this.store.sessionIndex.next(
        entity.streamId,
        Math.min(left, INDEX_PULL_MS),
        signal,
      );
      if (!offer) continue; // the loop ends at the deadline
      const accepted = await this.takeOffer(entity, offer);
      if (accepted && signal.aborted) {
        // The caller is gone: give the session back rather than leave it locked by nobody.
        const handle = this.handles.get(accepted.lockToken);
        if (handle) await this.unlock(handle).catch(() => undefined);
        return undefined;
      }
      if (accepted) return accepted;
    }
    return undefined;
  }

  /** Tries the offered session: locks it if free and not empty. */
  private async takeOffer(
    entity: ResolvedEntity,
    offer: SessionOffer,
  ): Promise<AcceptedSession | undefined> {
    const sessionId = sessionIdOf(offer.token);
    if (sessionId === undefined) {
      offer.ack(); // not a session subject: nothing to offer
      return undefined;
    }
    const taken = await this.tryLock(entity, offer.token);
    if (typeof taken === "number") {
      // Held: look again when that lock would expire; its holder re-offers on close.
      offer.retry(Math.max(100, taken - Date.now() + 50));
      return undefined;
    }
    const accepted = await this.open(entity, sessionId, offer.token, taken, offer);
    if (accepted) return accepted;
    return undefined;
  }

  /**
   * Takes the lock if it is free or expired: returns the new lock, or the expiry of the
   * lock that holds the session.
   */
  private async tryLock(
    entity: ResolvedEntity,
    token: string,
  ): Promise<{ lockToken: string; until: number } | number> {
    const lockToken = randomUUID();
    let heldUntil = 0;
    const until = Date.now() + entity.settings.lockDurationMs;
    await updateSessionRecord(this.store, entity.streamId, token, (record) => {
      heldUntil = 0;
      if (record.lock && record.lock.until > Date.now()) {
        heldUntil = record.lock.until;
        return null;
      }
      record.lock = { token: lockToken, until };
      record.lastActivity = Date.now();
      startLock(record);
      return record;
    });
    return heldUntil > 0 ? heldUntil : { lockToken, until };
  }

  /**
   * Opens the session's consumer under a new lock and applies the expiry rule. For
   * accept-next, an empty session (also one emptied by expiry) is released again
   * (undefined); a named accept keeps it, empty or not.
   */
  private async open(
    entity: ResolvedEntity,
    sessionId: string,
    token: string,
    lock: { lockToken: string; until: number },
    offer: SessionOffer | undefined,
  ): Promise<AcceptedSession | undefined> {
    const { reader, pending } = await this.store.messages.openSessionConsumer(
      entity.layout,
      sessionId,
    );
    const handle = this.remember(
      entity,
      sessionId,
      token,
      lock.lockToken,
      lock.until,
      reader,
      offer,
    );
    // Expiry is evaluated now that the session has a listener; nothing is in flight yet.
    const expired = pending > 0 ? await expireSessionOnAccept(this.store, entity, sessionId) : [];
    handle.settled.push(...expired);
    if (offer && pending - expired.length <= 0) {
      if (pending === 0 && entity.layout.sourced && offer.attempt < SOURCING_RETRIES) {
        // A topic message is offered right after the topic stored it; JetStream may not
        // have copied it into this subscription yet. Look again shortly, keep the offer.
        handle.offer = undefined;
        handle.indexed = false;
        offer.retry(SOURCING_RETRY_MS * offer.attempt);
      }
      await updateSessionRecord(this.store, entity.streamId, token, (record) => {
        if (record.lock?.token === lock.lockToken) record.lock = null;
        dropSettled(record, expired);
        return record;
      });
      await this.release(handle);
      return undefined;
    }
    return { sessionId, lockToken: lock.lockToken, lockedUntil: lock.until };
  }

  private remember(
    entity: ResolvedEntity,
    sessionId: string,
    token: string,
    lockToken: string,
    lockedUntil: number,
    reader: SessionHandle["reader"],
    offer: SessionOffer | undefined,
  ): SessionHandle {
    const handle: SessionHandle = {
      entity: entity.identity,
      entityPath: entity.address.path,
      streamId: entity.streamId,
      layout: entity.layout,
      sessionId,
      token,
      lockToken,
      lockedUntil,
      reader,
      offer,
      indexed: offer !== undefined,
      inflight: new Set(),
      settled: [],
      ended: new AbortController(),
      known: undefined,
      generation: 0,
      interrupt: undefined,
      onRecall: undefined,
    };
    this.handles.set(lockToken, handle);
    this.bySession.set(sessionKey(handle.streamId, token), handle);
    return handle;
  }

  hasEntry(streamId: string, token: string): boolean {
    const handle = this.bySession.get(sessionKey(streamId, token));
    return !!handle?.indexed && handle.lockedUntil > Date.now();
  }

  entriesPublished(streamId: string, tokens: readonly string[]): void {
    for (const token of tokens) {
      const handle = this.bySession.get(sessionKey(streamId, token));
      if (handle) handle.indexed = true;
    }
  }

  /**
   * After the lock is freed: delete the session's consumer (the next holder gets the
   * unsettled messages again, in order), re-offer the session if it still has messages, and
   * end what hangs off the handle here.
   */
  private async release(handle: SessionHandle): Promise<void> {
    await this.forget(handle);
    await this.store.messages.closeSessionConsumer(handle.streamId, handle.sessionId);
    const next = await this.store.messages.nextActive(handle.layout, 1, { id: handle.sessionId });
    if (next) await this.store.sessionIndex.offer(handle.streamId, handle.token);
    handle.offer?.ack();
  }

  /** Forgets a lock found lost (expired, or taken by another holder), counting it once. */
  private async lost(handle: SessionHandle): Promise<void> {
    if (this.handles.get(handle.lockToken) === handle) {
      metricsOf(this.store).sessionLockLost(handle.entity, handle.entityPath);
    }
    await this.forget(handle);
  }

  private async forget(handle: SessionHandle): Promise<void> {
    this.handles.delete(handle.lockToken);
    const key = sessionKey(handle.streamId, handle.token);
    if (this.bySession.get(key) === handle) this.bySession.delete(key);
    handle.ended.abort();
    for (const lock of handle.inflight) this.locks.drop(lock);
    handle.inflight.clear();
  }
}

function sessionKey(streamId: string, token: string): string {
  return `${streamId} ${token}`;
}

/** The record shows the handle's lock, unexpired. */
function holds(handle: SessionHandle, record: SessionRecord): boolean {
  return record.lock?.token === handle.lockToken && record.lock.until > Date.now();
}

function requireSessionEntity(entity: ResolvedEntity): void {
  if (!entity.settings.requiresSession) throw new NotSessionEntityError(entity.address.path);
}

function sessionIdOf(token: string): string | undefined {
  return token.startsWith("s")
    ? Buffer.from(token.slice(1), "base64url").toString("utf8")
    : undefined;
}

function lockLostWhy(record: SessionRecord, lockToken: string): string {
  if (record.lock?.token === lockToken)
    return `it expired at ${new Date(record.lock.until).toISOString()}`;
  if (record.lock && record.lock.until > Date.now())
    return "another receiver holds the session now";
  return "the lock was released or expired";
}
