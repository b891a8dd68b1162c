/**
 * Request–reply over sessions (semantics §5), done by the client while the broker has no
 * RequestReply RPC: a request carries reply_to = a session-enabled reply queue and
 * reply_to_session_id = this client's instance id; the client holds the lock on that one
 * session of the reply queue and hands each reply to the call whose request's message id
 * it names as correlation id. Concurrent calls share the session.
 */
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { REQUEST_REPLY_DEFAULTS, withDefaults } from "./defaults.js";
import { RequestTimeoutError, SessionLockLostError } from "./errors.js";
import { startLockRenewal } from "./lock-renewal.js";
import type { MessageToSend, ReceivedMessage } from "./message.js";
import type { Rpc } from "./rpc.js";
import { createSender } from "./sender.js";
import { acceptSession, type SessionReceiver } from "./session-receiver.js";

export interface RequestReplyOptions {
  /** The session-enabled queue replies come back on (required). */
  replyQueue: string;
  /** How long to wait for the reply, sending included. @default 60_000 */
  timeoutMs?: number | undefined;
  /** Cancels the wait; the call then rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
}

interface Waiter {
  resolve(reply: ReceivedMessage): void;
  reject(error: unknown): void;
}

/** The requests of one client instance, with one reply session per reply queue. */
export class Requester {
  private readonly listeners = new Map<string, Promise<ReplyListener>>();
  private closed = false;

  constructor(
    private readonly rpc: Rpc,
    private readonly instanceId: string,
  ) {}

  async request(
    requestQueue: string,
    request: MessageToSend,
    options: RequestReplyOptions,
  ): Promise<ReceivedMessage> {
    const { timeoutMs } = withDefaults(REQUEST_REPLY_DEFAULTS, options);
    const { signal, replyQueue } = options;
    signal?.throwIfAborted();
    if (this.closed) throw new Error("The sessionbus client is closed");
    const messageId = request.messageId ?? randomUUID();
    const timeout = AbortSignal.timeout(timeoutMs);
    const cancel = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const cancelled = () =>
      signal?.aborted
        ? signal.reason
        : new RequestTimeoutError(
            `No reply to message "${messageId}" on session "${this.instanceId}" of "${replyQueue}" within ${timeoutMs} ms.`,
            {
              reason: "REQUEST_TIMEOUT",
              code: Code.DeadlineExceeded,
              entityPath: replyQueue,
              sessionId: this.instanceId,
            },
          );
    const listener = await untilAborted(this.listener(replyQueue), cancel, cancelled);
    const reply = listener.expect(messageId);
    const stop = () => reply.cancel(cancelled());
    cancel.addEventListener("abort", stop);
    if (cancel.aborted) stop();
    try {
      await createSender(this.rpc, requestQueue).send(
        { ...request, messageId, replyTo: replyQueue, replyToSessionId: this.instanceId },
        { signal: cancel },
      );
      return await reply.promise;
    } catch (error) {
      reply.cancel(error);
      // Cancelled while sending: the call fails with the reason of the cancellation.
      if (cancel.aborted) return reply.promise;
      throw error;
    } finally {
      cancel.removeEventListener("abort", stop);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const listeners = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.allSettled(listeners.map(async (l) => (await l).close()));
  }

  private listener(replyQueue: string): Promise<ReplyListener> {
    let listener = this.listeners.get(replyQueue);
    if (!listener) {
      const opening = ReplyListener.open(this.rpc, replyQueue, this.instanceId, () => {
        if (this.listeners.get(replyQueue) === opening) this.listeners.delete(replyQueue);
      });
      opening.catch(() => {
        if (this.listeners.get(replyQueue) === opening) this.listeners.delete(replyQueue);
      });
      listener = opening;
      this.listeners.set(replyQueue, listener);
    }
    return listener;
  }
}

/** Holds the reply session and routes replies to their waiting calls. */
class ReplyListener {
  private readonly waiters = new Map<string, Waiter>();
  private readonly closing = new AbortController();
  private readonly completions = new Set<Promise<void>>();
  private failure: unknown;
  private loop: Promise<void> = Promise.resolve();

  private constructor(
    private readonly receiver: SessionReceiver,
    private readonly onEnd: () => void,
  ) {}

  static async open(
    rpc: Rpc,
    replyQueue: string,
    instanceId: string,
    onEnd: () => void,
  ): Promise<ReplyListener> {
    const receiver = await acceptSession(rpc, replyQueue, instanceId, {
      prefetch: REQUEST_REPLY_DEFAULTS.replyPrefetch,
    });
    const listener = new ReplyListener(receiver, onEnd);
    const renewal = startLockRenewal({
      renew: () => receiver.renewLock(),
      lockedUntil: receiver.lockedUntil,
      maxDurationMs: undefined,
      onError: () => undefined, // tried again while the lock may still be held
      onLost: (error) => listener.fail(error),
    });
    listener.loop = listener.run().finally(() => renewal.stop());
    return listener;
  }

  /** Registers a call waiting for the reply to `messageId`. */
  expect(messageId: string): { promise: Promise<ReceivedMessage>; cancel(error: unknown): void } {
    if (this.failure !== undefined) throw this.failure;
    if (this.waiters.has(messageId)) {
      throw new Error(`A request with message id "${messageId}" is already waiting for its reply`);
    }
    let waiter: Waiter | undefined;
    const promise = new Promise<ReceivedMessage>((resolve, reject) => {
      waiter = { resolve, reject };
    });
    promise.catch(() => undefined); // the caller awaits it only after sending succeeded
    const registered = waiter as Waiter;
    this.waiters.set(messageId, registered);
    return {
      promise,
      cancel: (error) => {
        if (this.waiters.get(messageId) !== registered) return;
        this.waiters.delete(messageId);
        registered.reject(error);
      },
    };
  }

  /** Releases the session; calls still waiting fail. */
  async close(): Promise<void> {
    this.closing.abort();
    for (const waiter of this.waiters.values()) {
      waiter.reject(new Error("The sessionbus client was closed before the reply arrived"));
    }
    this.waiters.clear();
    await this.loop;
    await Promise.allSettled([...this.completions]);
    await this.receiver.close().catch(() => undefined);
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const reply = await this.receiver.receiveMessage({ signal: this.closing.signal });
        if (!reply) break;
        this.deliver(reply);
      }
      if (!this.closing.signal.aborted) {
        this.fail(
          new SessionLockLostError(`The reply session of "${this.receiver.entityPath}" ended.`, {
            reason: "SESSION_LOCK_LOST",
            code: Code.FailedPrecondition,
            entityPath: this.receiver.entityPath,
            sessionId: this.receiver.sessionId,
          }),
        );
      }
    } catch (error) {
      if (!this.closing.signal.aborted) this.fail(error);
    }
  }

  /** Completes the reply, then resolves its call; replies nobody waits for are dropped. */
  private deliver(reply: ReceivedMessage): void {
    const completion = this.receiver
      .complete(reply)
      .catch(() => undefined) // it comes again, and is then dropped as unmatched
      .then(() => {
        const waiter = this.waiters.get(reply.correlationId);
        if (!waiter) return;
        this.waiters.delete(reply.correlationId);
        waiter.resolve(reply);
      });
    this.completions.add(completion);
    void completion.finally(() => this.completions.delete(completion));
  }

  /** The session is gone: every waiting call fails, and the next call accepts it again. */
  private fail(error: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.onEnd();
    for (const waiter of this.waiters.values()) waiter.reject(error);
    this.waiters.clear();
    this.closing.abort();
    void this.receiver.close().catch(() => undefined);
  }
}

/** `promise`, or a rejection with `reason()` as soon as `signal` aborts. */
function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  reason: () => unknown,
): Promise<T> {
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(reason());
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}
