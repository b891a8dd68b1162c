import type { ReceivedMessage } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import { Disposition } from "../../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import type { Store } from "../../store/store.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { SessionLockLostError } from "../errors.js";
import type { SessionHandle } from "../locks/lock-handles.js";
import type { MessageLocks } from "../locks/message-locks.js";
import { receiveSession } from "../sessions/session-receiver.js";
import type { SessionRef, Sessions } from "../sessions/sessions.js";
import type { Settlement, SettleOptions } from "../settlement/settlement.js";

/** @default 100 — replies the shared reply session may have delivered and unsettled at once. */
export const REPLY_PREFETCH = 100;
/** Dead-letter reason of a reply no call waits for (a stray reply, or one that came late). */
export const NO_WAITING_REQUEST = "NoWaitingRequest";

export interface ReplySessionDeps {
  store: Store;
  locks: MessageLocks;
  sessions: Sessions;
  settlement: Settlement;
}

/** One call's wait for its reply. */
export interface ExpectedReply {
  /**
   * The reply, completed. When `signal` aborts first, rejects with its reason, unless the
   * reply is already being completed: then the call gets it (a round trip later).
   */
  until(signal: AbortSignal): Promise<ReceivedMessage>;
}

interface Waiter {
  /** waiting: no reply yet; claimed: the reply is being completed; done: answered or given up. */
  state: "waiting" | "claimed" | "done";
  resolve(reply: ReceivedMessage): void;
  reject(error: unknown): void;
  promise: Promise<ReceivedMessage>;
}

const complete: SettleOptions = {
  disposition: Disposition.COMPLETE,
  deadLetterReason: "",
  deadLetterDescription: "",
};

/**
 * The session `instanceId` of a reply queue, held for the RequestReply calls of that
 * instance in this broker process: one session lock and one receive loop shared by all of
 * them. Each reply is routed by its correlation_id to the call waiting for it and completed
 * before that call answers; a reply no call waits for is dead-lettered with reason
 * NoWaitingRequest, so it neither blocks the session nor vanishes. The lock is renewed while
 * calls wait, and released when the last call ends.
 */
export class ReplySession {
  /** Resolves when the session is locked and its receive loop runs. */
  readonly ready: Promise<void>;
  /** Resolves when the session has been released (or could not be accepted). */
  readonly closed: Promise<void>;
  private markClosed: () => void = () => undefined;
  private readonly waiters = new Map<string, Waiter>();
  private readonly stopping = new AbortController();
  private readonly settling = new Set<Promise<unknown>>();
  private ref: SessionRef | undefined;
  private loop: Promise<void> = Promise.resolve();
  private renewal: NodeJS.Timeout | undefined;
  private ending: Promise<void> | undefined;

  constructor(
    private readonly deps: ReplySessionDeps,
    private readonly entity: ResolvedEntity,
    private readonly instanceId: string,
  ) {
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    this.ready = this.start();
    this.ready.catch((error: unknown) => this.stop(error));
  }

  /** False once the session is being released: new calls must wait and open it anew. */
  get accepting(): boolean {
    return this.ending === undefined;
  }

  /** Whether a call already waits for the reply to `messageId`. */
  waits(messageId: string): boolean {
    return this.waiters.has(messageId);
  }

  expect(messageId: string): ExpectedReply {
    const waiter = { state: "waiting" } as Waiter;
    waiter.promise = new Promise<ReceivedMessage>((resolve, reject) => {
      waiter.resolve = resolve;
      waiter.reject = reject;
    });
    waiter.promise.catch(() => undefined); // awaited only once the request is sent
    this.waiters.set(messageId, waiter);
    return {
      until: (signal) => {
        if (waiter.state !== "waiting") return waiter.promise;
        const giveUp = () => {
          if (waiter.state !== "waiting") return; // claimed: the reply is on its way
          waiter.state = "done";
          waiter.reject(signal.reason);
        };
        if (signal.aborted) giveUp();
        else signal.addEventListener("abort", giveUp, { once: true });
        return waiter.promise.finally(() => signal.removeEventListener("abort", giveUp));
      },
    };
  }

  /** The call is over: forgets its wait; the last one releases the session (awaited). */
  release(messageId: string): Promise<void> {
    const waiter = this.waiters.get(messageId);
    if (waiter?.state === "waiting") waiter.state = "done";
    this.waiters.delete(messageId);
    if (this.waiters.size === 0 || !this.accepting) return this.stop(undefined);
    return Promise.resolve();
  }

  /** Ends the receive loop, fails calls still waiting with `error`, releases the lock. */
  stop(error: unknown): Promise<void> {
    this.ending ??= this.end(error);
    return this.ending;
  }

  private async start(): Promise<void> {
    const { sessions } = this.deps;
    const accepted = await sessions.accept(this.entity, this.instanceId, 0, this.stopping.signal);
    if (!accepted) throw new Error(`Accepting session "${this.instanceId}" returned no lock`);
    this.ref = { sessionId: accepted.sessionId, lockToken: accepted.lockToken };
    const handle = await sessions.handle(this.entity, this.ref);
    this.loop = this.run(handle);
    this.scheduleRenewal(accepted.lockedUntil);
  }

  private async end(error: unknown): Promise<void> {
    this.stopping.abort();
    await this.ready.catch(() => undefined);
    clearTimeout(this.renewal);
    await this.loop;
    await Promise.allSettled([...this.settling]);
    const failure =
      error ??
      new SessionLockLostError(
        this.entity.address.path,
        this.instanceId,
        "the reply session ended",
      );
    for (const waiter of this.waiters.values()) {
      if (waiter.state === "claimed") continue; // settled above: already answered
      waiter.state = "done";
      waiter.reject(failure);
    }
    if (this.ref) await this.deps.sessions.close(this.entity, this.ref).catch(() => undefined);
    this.markClosed();
  }

  private async run(handle: SessionHandle): Promise<void> {
    const { store, locks, sessions } = this.deps;
    const options = {
      receiveAndDelete: false,
      prefetch: REPLY_PREFETCH,
      maxMessages: 0,
      maxWaitMs: 0,
      signal: this.stopping.signal,
    };
    try {
      for await (const event of receiveSession(
        store,
        locks,
        sessions,
        this.entity,
        handle,
        options,
      ))
        if (event.kind === "message") this.route(event.message);
      if (!this.stopping.signal.aborted) {
        void this.stop(
          new SessionLockLostError(this.entity.address.path, this.instanceId, "the lock ended"),
        );
      }
    } catch (error) {
      if (!this.stopping.signal.aborted) void this.stop(error);
    }
  }

  /** Hands the reply to the call waiting for it, or dead-letters it. */
  private route(reply: ReceivedMessage): void {
    const correlationId = reply.message?.correlationId ?? "";
    const waiter = this.waiters.get(correlationId);
    if (waiter?.state === "waiting") {
      waiter.state = "claimed";
      this.track(
        this.settle(reply, complete).then(
          () => {
            reply.lockToken = "";
            reply.lockedUntil = undefined;
            waiter.state = "done";
            waiter.resolve(reply);
          },
          (error: unknown) => {
            waiter.state = "done";
            waiter.reject(error);
          },
        ),
      );
      return;
    }
    // A reply that cannot be settled stays in the session and comes again with the next holder.
    this.track(
      this.settle(reply, {
        disposition: Disposition.DEAD_LETTER,
        deadLetterReason: NO_WAITING_REQUEST,
        deadLetterDescription: `No RequestReply call of instance "${this.instanceId}" waited for a reply with correlation id "${correlationId.slice(0, 128)}": a stray reply, or one that came after its call had ended.`,
      }).catch(() => undefined),
    );
  }

  private settle(reply: ReceivedMessage, options: SettleOptions): Promise<void> {
    return this.deps.settlement.settle(this.entity, [reply.lockToken], options, this.ref);
  }

  private track(work: Promise<unknown>): void {
    this.settling.add(work);
    void work.finally(() => this.settling.delete(work));
  }

  /** Renews at half of what is left of the lock; a failed renewal is retried a second later. */
  private scheduleRenewal(lockedUntil: number): void {
    if (this.stopping.signal.aborted) return;
    const inMs = Math.max(500, (lockedUntil - Date.now()) / 2);
    this.renewal = setTimeout(() => void this.renew(), inMs);
    this.renewal.unref();
  }

  private async renew(): Promise<void> {
    if (this.stopping.signal.aborted || !this.ref) return;
    try {
      this.scheduleRenewal(await this.deps.sessions.renew(this.entity, this.ref));
    } catch (error) {
      // A lost lock also ends the receive loop, which ends the session.
      if (error instanceof SessionLockLostError) void this.stop(error);
      else this.scheduleRenewal(Date.now() + 2000);
    }
  }
}
