/**
 * A session of a session-enabled entity, locked for this receiver: accept a named session
 * or the next available one, receive its messages in order, settle them, keep its state.
 *
 * With several brokers, every call of the session goes to the broker it was accepted
 * through. When the connection to that broker fails, the session is lost to this receiver:
 * its calls fail with SessionLockLostError and nothing is sent anywhere else. Its lock stays
 * in the store until it expires (the broker that held it may be dead, and its deliveries
 * can be settled nowhere else); then the session can be accepted again through any broker,
 * and its unsettled messages come again with their delivery count one higher (semantics
 * §4: the holder vanished). The receiver does not renew or release the lock through
 * another broker: a renewal would keep the session from everyone, and a release would hide
 * the failed delivery from the count that stops a message which kills its brokers.
 */

import { durationFromMs, type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { BaseReceiver, type MessageReceiver, type ReceiveModeName } from "./base-receiver.js";
import { SESSION_RECEIVER_DEFAULTS, withDefaults } from "./defaults.js";
import { SessionLockLostError } from "./errors.js";
import { BrokerRoute, type RouteFailure } from "./failover/broker-route.js";
import { type CallOptions, invoke, type Rpc } from "./rpc.js";
import { inSpan, SpanKind } from "./tracing.js";

export interface SessionReceiverOptions {
  /**
   * Messages read ahead and held unsettled at once. A session's messages go only to its
   * holder, so this takes nothing from other receivers; after an abandon the read-ahead is
   * recalled and comes again in order. At most 1000.
   * @default 10
   */
  prefetch?: number | undefined;
  /** @default "peekLock" */
  receiveMode?: ReceiveModeName | undefined;
  /** Cancels the accept call. */
  signal?: AbortSignal | undefined;
  /** Deadline of the accept call (accept-next: on top of `maxWaitMs`). @default the client's `callTimeoutMs` */
  timeoutMs?: number | undefined;
}

export interface AcceptNextSessionOptions extends SessionReceiverOptions {
  /**
   * How long to wait for a session with a receivable message; then the result is
   * undefined. A message arriving for an unlocked session ends the wait at once.
   * @default 60_000
   */
  maxWaitMs?: number | undefined;
}

/** A locked session: its messages in sequence order, settlement, state and lock. */
export interface SessionReceiver extends MessageReceiver {
  readonly sessionId: string;
  /** When the session lock runs out unless renewed (the broker's clock). */
  readonly lockedUntil: Date;
  /** The session's state; undefined when never set or cleared. */
  getState(options?: CallOptions): Promise<Uint8Array | undefined>;
  /** Replaces the state (a string is stored as UTF-8); undefined clears it. */
  setState(state: Uint8Array | string | undefined, options?: CallOptions): Promise<void>;
  /** Extends the session lock by the entity's lock_duration; returns the new expiry. */
  renewLock(options?: CallOptions): Promise<Date>;
  /**
   * Releases the session lock: unsettled messages go to the next holder with their delivery
   * count unchanged. Closing a session whose lock is already lost succeeds.
   */
  close(options?: CallOptions): Promise<void>;
}

/** Locks the named session (also an empty or unknown one). */
export async function acceptSession(
  rpc: Rpc,
  entityPath: string,
  sessionId: string,
  options?: SessionReceiverOptions,
): Promise<SessionReceiver> {
  const route = rpc.brokers ? new BrokerRoute() : undefined;
  const spec = {
    operation: "accept",
    destination: entityPath,
    kind: SpanKind.CLIENT,
    attributes: { "sessionbus.session.id": sessionId },
  };
  return inSpan(spec, async (span) => {
    const response = await invoke(
      rpc,
      span ? { ...options, span } : options,
      (call) => rpc.messaging.acceptSession({ entityPath, sessionId }, call),
      0,
      route,
    );
    const lock = response.session;
    if (!lock) throw new Error(`AcceptSession of "${sessionId}" returned no session lock`);
    return openSession(rpc, entityPath, lock, options, route);
  });
}

/** Locks the next session with a receivable message; undefined if none within maxWaitMs. */
export async function acceptNextSession(
  rpc: Rpc,
  entityPath: string,
  options?: AcceptNextSessionOptions,
): Promise<SessionReceiver | undefined> {
  const { maxWaitMs } = withDefaults(SESSION_RECEIVER_DEFAULTS, options);
  const route = rpc.brokers ? new BrokerRoute() : undefined;
  const spec = { operation: "accept", destination: entityPath, kind: SpanKind.CLIENT };
  return inSpan(spec, async (span) => {
    const response = await invoke(
      rpc,
      span ? { ...options, span } : options,
      (call) =>
        rpc.messaging.acceptSession({ entityPath, maxWait: durationFromMs(maxWaitMs) }, call),
      maxWaitMs,
      route,
    );
    span?.setAttribute("sessionbus.session.id", response.session?.sessionId ?? "");
    return response.session
      ? openSession(rpc, entityPath, response.session, options, route)
      : undefined;
  });
}

function openSession(
  rpc: Rpc,
  entityPath: string,
  lock: { sessionId: string; lockToken: string; lockedUntil?: Timestamp | undefined },
  options: SessionReceiverOptions | undefined,
  route: BrokerRoute | undefined,
): SessionReceiver {
  const { prefetch, receiveMode } = withDefaults(SESSION_RECEIVER_DEFAULTS, options);
  return new LockedSession(
    rpc,
    entityPath,
    prefetch,
    receiveMode,
    { sessionId: lock.sessionId, lockToken: lock.lockToken },
    lock.lockedUntil ? timestampDate(lock.lockedUntil) : new Date(),
    route,
  );
}

const encoder = new TextEncoder();

class LockedSession extends BaseReceiver implements SessionReceiver {
  private readonly ref: { sessionId: string; lockToken: string };

  constructor(
    rpc: Rpc,
    entityPath: string,
    prefetch: number,
    receiveMode: ReceiveModeName,
    ref: { sessionId: string; lockToken: string },
    public lockedUntil: Date,
    route: BrokerRoute | undefined,
  ) {
    super(rpc, entityPath, prefetch, receiveMode, ref, route);
    this.ref = ref;
  }

  get sessionId(): string {
    return this.ref.sessionId;
  }

  protected override lockLost(lost: RouteFailure, cause: unknown): Error {
    return new SessionLockLostError(
      `Session "${this.sessionId}" of "${this.entityPath}" was held through the broker at ${lost.url}, and the connection to it failed. Its lock stays in the store until it expires (${this.lockedUntil.toISOString()} unless renewed since); then the session can be accepted again through any broker, its unsettled messages with their delivery count one higher.`,
      {
        reason: "SESSION_LOCK_LOST",
        code: Code.FailedPrecondition,
        entityPath: this.entityPath,
        sessionId: this.sessionId,
        cause,
      },
    );
  }

  async getState(options?: CallOptions): Promise<Uint8Array | undefined> {
    const response = await this.call(this.sessionRoute, options, (call) =>
      this.rpc.messaging.getSessionState({ entityPath: this.entityPath, session: this.ref }, call),
    );
    return response.state;
  }

  async setState(state: Uint8Array | string | undefined, options?: CallOptions): Promise<void> {
    await this.call(this.sessionRoute, options, (call) =>
      this.rpc.messaging.setSessionState(
        {
          entityPath: this.entityPath,
          session: this.ref,
          state: typeof state === "string" ? encoder.encode(state) : state,
        },
        call,
      ),
    );
  }

  async renewLock(options?: CallOptions): Promise<Date> {
    const response = await this.call(this.sessionRoute, options, (call) =>
      this.rpc.messaging.renewSessionLock({ entityPath: this.entityPath, session: this.ref }, call),
    );
    if (response.lockedUntil) this.lockedUntil = timestampDate(response.lockedUntil);
    return this.lockedUntil;
  }

  async close(options?: CallOptions): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stream.close();
    try {
      await this.call(this.sessionRoute, options, (call) =>
        this.rpc.messaging.closeSession({ entityPath: this.entityPath, session: this.ref }, call),
      );
    } catch (error) {
      if (!(error instanceof SessionLockLostError)) throw error;
    }
  }
}
