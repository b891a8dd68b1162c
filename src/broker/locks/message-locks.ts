import { randomUUID } from "node:crypto";
import type { MessageLock, NewLock, SettledLock } from "./lock-handles.js";
import { SettledTokens } from "./settled-tokens.js";

/**
 * The message locks this broker process handed out. JetStream holds the lock itself (the
 * consumer's ack_wait redelivers an expired message, also after this process dies); this
 * table adds what JetStream does not check: that a token is genuine, unexpired and not
 * settled already. A settled token is remembered until its lock would have expired, so a
 * second settle is told apart from a made-up token.
 */
export class MessageLocks {
  private readonly locks = new Map<string, MessageLock>();
  private readonly settled = new SettledTokens<SettledLock>();

  /** `onExpired`: called for each lock that ran out before its message was settled. */
  constructor(private readonly onExpired: (lock: MessageLock) => void = () => undefined) {}

  add(lock: NewLock): MessageLock {
    const held: MessageLock = { ...lock, token: randomUUID(), settled: false, timer: undefined };
    this.locks.set(held.token, held);
    this.schedule(held);
    return held;
  }

  /** The lock of a token, or what is left of it once settled. */
  get(token: string): MessageLock | SettledLock | undefined {
    return this.locks.get(token) ?? this.settled.get(token);
  }

  /**
   * Marks the lock settled and gives its credit back; the token is remembered as settled
   * until the lock would have expired (for a session message: its session lock).
   */
  settle(lock: MessageLock): void {
    lock.settled = true;
    clearTimeout(lock.timer);
    this.end(lock);
    this.locks.delete(lock.token);
    const { token, entity, entityPath, session } = lock;
    this.settled.remember(
      token,
      { token, entity, entityPath, session, settled: true },
      session ? session.lockedUntil : lock.lockedUntil,
    );
  }

  extend(lock: MessageLock, lockedUntil: number): void {
    lock.lockedUntil = lockedUntil;
    this.schedule(lock);
  }

  get size(): number {
    return this.locks.size;
  }

  /** Ends a lock without settling it (recalled, or its session closed): the token is void. */
  drop(lock: MessageLock): void {
    clearTimeout(lock.timer);
    this.end(lock);
    this.locks.delete(lock.token);
  }

  /** Forgets every lock (shutdown); JetStream redelivers their messages after expiry. */
  clear(): void {
    for (const lock of this.locks.values()) clearTimeout(lock.timer);
    this.locks.clear();
    this.settled.clear();
  }

  private schedule(lock: MessageLock): void {
    clearTimeout(lock.timer);
    // A message in a session is locked by the session lock: it ends with the session.
    if (lock.session) return;
    lock.timer = setTimeout(() => this.expire(lock), Math.max(0, lock.lockedUntil - Date.now()));
    lock.timer.unref();
  }

  private expire(lock: MessageLock): void {
    this.end(lock);
    this.locks.delete(lock.token);
    this.onExpired(lock);
  }

  private end(lock: MessageLock): void {
    const onEnd = lock.onEnd;
    lock.onEnd = undefined;
    onEnd?.();
  }
}
