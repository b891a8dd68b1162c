import { randomUUID } from "node:crypto";
import type { ReceivedMessage } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import type { Delivery } from "../../store/message-streams.js";
import type { SessionHandle } from "./lock-handles.js";
import { SettledTokens } from "./settled-tokens.js";

/** What a lock token settles: a delivery of the consumer, or a fetched deferred message. */
export type LockTarget =
  | { kind: "active"; delivery: Delivery }
  | { kind: "deferred"; copySequence: number; revision: number };

export interface MessageLock {
  token: string;
  /** Identity of the entity (its stream id) the message was delivered from. */
  entity: string;
  entityPath: string;
  lockedUntil: number;
  settled: boolean;
  target: LockTarget;
  /** The message as delivered, for dead-letter and defer copies. */
  message: ReceivedMessage;
  /** The session the message was received under; its lock is the message lock. */
  session: SessionHandle | undefined;
  /** Called once, when the lock ends by settlement or expiry (returns receive credit). */
  onEnd: (() => void) | undefined;
  timer: NodeJS.Timeout | undefined;
}

export type NewLock = Omit<MessageLock, "token" | "settled" | "timer">;

/** What is kept of a settled lock: enough to refuse a second settle with the right error. */
export type SettledLock = Pick<MessageLock, "token" | "entity" | "entityPath" | "session"> & {
  settled: true;
};

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
  }

  private end(lock: MessageLock): void {
    const onEnd = lock.onEnd;
    lock.onEnd = undefined;
    onEnd?.();
  }
}
