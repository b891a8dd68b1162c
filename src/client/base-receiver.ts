/**
 * What both receivers share: taking messages from a ReceiveStream and settling them by lock
 * token (under the session lock, for session receivers). With several brokers, a message is
 * settled through the broker connection it came on; once that connection failed, its lock
 * is lost (it comes again after the lock expires, delivery count + 1).
 */
import { Code } from "@connectrpc/connect";
import { Disposition, ReceiveMode } from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import {
  MessageAlreadySettledError,
  MessageLockLostError,
  SessionLockLostError,
  toSessionBusError,
} from "./errors.js";
import { BrokerRoute, type RouteFailure, routeValues } from "./failover/broker-route.js";
import { connectionFailure } from "./failover/connection-failure.js";
import { fromProtoMessage, type ReceivedMessage } from "./message.js";
import { ReceiveStream, type StreamRouting } from "./receive-stream.js";
import { type CallOptions, type ConnectCallOptions, invoke, type Rpc } from "./rpc.js";
import { endSpan, producerLink, SpanKind, startSpan, tracingOn } from "./tracing.js";

/** The name of each settlement in its span ("complete orders"). */
const SETTLE_NAMES: Record<Disposition, string> = {
  [Disposition.UNSPECIFIED]: "settle",
  [Disposition.COMPLETE]: "complete",
  [Disposition.ABANDON]: "abandon",
  [Disposition.DEAD_LETTER]: "dead_letter",
  [Disposition.DEFER]: "defer",
};

/** Options of a wait for messages. */
export interface ReceiveOptions {
  /**
   * How long to wait for a message before giving up (undefined from receiveMessage, the
   * end of iteration). @default wait until a message arrives or the receiver closes
   */
  maxWaitMs?: number | undefined;
  /** Stops the wait; it then rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
}

/** How messages are taken from the entity. */
export type ReceiveModeName = "peekLock" | "receiveAndDelete";

/** The settlement and receive methods both receivers have. */
export interface MessageReceiver extends AsyncIterable<ReceivedMessage> {
  readonly entityPath: string;
  /** The next message; undefined after `maxWaitMs` without one, or once closed. */
  receiveMessage(options?: ReceiveOptions): Promise<ReceivedMessage | undefined>;
  /**
   * Up to `maxMessages`: waits up to `maxWaitMs` for the first, then adds those already
   * received (no further wait). Empty when none arrived in time.
   */
  receiveMessages(maxMessages: number, options?: ReceiveOptions): Promise<ReceivedMessage[]>;
  /** Iterates messages until none arrives for `maxWaitMs`, or the receiver closes. */
  messages(options?: ReceiveOptions): AsyncIterable<ReceivedMessage>;
  /** Removes the message for good. */
  complete(message: ReceivedMessage, options?: CallOptions): Promise<void>;
  /** Releases the message for redelivery (delivery count + 1). */
  abandon(message: ReceivedMessage, options?: CallOptions): Promise<void>;
  /** Moves the message to the dead-letter queue. */
  deadLetter(
    message: ReceivedMessage,
    reason?: string,
    description?: string,
    options?: CallOptions,
  ): Promise<void>;
  /** Sets the message aside; fetch it again with receiveDeferred(sequence number). */
  defer(message: ReceivedMessage, options?: CallOptions): Promise<void>;
  /** Fetches deferred messages by sequence number and locks them (in request order). */
  receiveDeferred(
    sequenceNumbers: readonly (bigint | number)[],
    options?: CallOptions,
  ): Promise<ReceivedMessage[]>;
  /** Stops receiving (and for a session, releases its lock). */
  close(options?: CallOptions): Promise<void>;
}

interface SessionRef {
  sessionId: string;
  lockToken: string;
}

export abstract class BaseReceiver implements MessageReceiver {
  protected readonly stream: ReceiveStream;
  protected closed = false;
  /** Deferred messages fetched without a session, by the route they were locked through. */
  private readonly deferredRoutes = new WeakMap<ReceivedMessage, BrokerRoute>();

  /**
   * `sessionRoute`: the broker connection the session was accepted through; every call of
   * the session goes there, and its stream is never reopened elsewhere. Without it (no
   * session), a stream whose connection failed is reopened on the next broker.
   */
  constructor(
    protected readonly rpc: Rpc,
    readonly entityPath: string,
    prefetch: number,
    receiveMode: ReceiveModeName,
    protected readonly session: SessionRef | undefined,
    protected readonly sessionRoute?: BrokerRoute,
  ) {
    const brokers = rpc.brokers;
    const routing: StreamRouting | undefined =
      brokers === undefined
        ? undefined
        : {
            route: () => sessionRoute ?? new BrokerRoute(),
            connectionFailure: (route) => {
              const lost = brokers.routeFailure(route);
              return lost && (connectionFailure(lost.error, undefined) ?? "broken");
            },
            reopenAcross: sessionRoute ? 0 : brokers.addressCount,
            failure: (error, route) => this.failureOn(route, error),
          };
    this.stream = new ReceiveStream(
      (signal, route) =>
        rpc.messaging.receiveStream(
          {
            entityPath,
            prefetch,
            receiveMode:
              receiveMode === "receiveAndDelete"
                ? ReceiveMode.RECEIVE_AND_DELETE
                : ReceiveMode.PEEK_LOCK,
            session,
          },
          route === undefined ? { signal } : { signal, contextValues: routeValues(route) },
        ),
      prefetch,
      routing,
    );
  }

  /** The broker connection `message` must be settled through (with several brokers). */
  protected routeOf(message: ReceivedMessage): BrokerRoute | undefined {
    return this.sessionRoute ?? this.stream.routeOf(message) ?? this.deferredRoutes.get(message);
  }

  /**
   * The error of a call along `route`: when the route's connection failed, the lock of what
   * came through it is lost (a session receiver says so for its session); otherwise the
   * error as the broker gave it.
   */
  protected failureOn(route: BrokerRoute | undefined, error: unknown): unknown {
    const lost = route === undefined ? undefined : this.rpc.brokers?.routeFailure(route);
    return lost === undefined ? toSessionBusError(error) : this.lockLost(lost, error);
  }

  /** The error of a message settled after its broker connection failed. */
  protected lockLost(lost: RouteFailure, cause: unknown): Error {
    return new MessageLockLostError(
      `The message was received from "${this.entityPath}" through the broker at ${lost.url}, and the connection to it failed: its lock went with it. The message is delivered again once its lock expires, with its delivery count one higher.`,
      {
        reason: "MESSAGE_LOCK_LOST",
        code: Code.FailedPrecondition,
        entityPath: this.entityPath,
        sessionId: this.session?.sessionId,
        cause,
      },
    );
  }

  receiveMessage(options?: ReceiveOptions): Promise<ReceivedMessage | undefined> {
    if (!tracingOn()) return this.next(options);
    const startTime = Date.now();
    return this.next(options).then((message) => {
      if (message) this.traceReceived([message], startTime);
      return message;
    });
  }

  async receiveMessages(maxMessages: number, options?: ReceiveOptions): Promise<ReceivedMessage[]> {
    const startTime = Date.now();
    const first = await this.next(options);
    if (!first) return [];
    const received = [first];
    while (received.length < maxMessages) {
      const more = await this.next({ maxWaitMs: 0, signal: options?.signal });
      if (!more) break;
      received.push(more);
    }
    this.traceReceived(received, startTime);
    return received;
  }

  private next(options: ReceiveOptions | undefined): Promise<ReceivedMessage | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    return this.stream.next(options?.maxWaitMs, options?.signal);
  }

  /**
   * The span of a receive that returned messages, from when the wait began, linked to the
   * span that sent each message. A wait that ends empty leaves no span.
   */
  private traceReceived(messages: readonly ReceivedMessage[], startTime: number): void {
    if (!tracingOn()) return;
    const links = messages.flatMap((m) => producerLink(m.applicationProperties) ?? []);
    const [only] = messages;
    const span = startSpan({
      operation: "receive",
      destination: this.entityPath,
      kind: SpanKind.CONSUMER,
      startTime,
      links,
      attributes: {
        ...(messages.length === 1 && only
          ? { "messaging.message.id": only.messageId }
          : { "messaging.batch.message_count": messages.length }),
        ...(this.session ? { "sessionbus.session.id": this.session.sessionId } : {}),
      },
    });
    endSpan(span);
  }

  async *messages(options?: ReceiveOptions): AsyncGenerator<ReceivedMessage> {
    for (;;) {
      const message = await this.receiveMessage(options);
      if (!message) return;
      yield message;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<ReceivedMessage> {
    return this.messages();
  }

  complete(message: ReceivedMessage, options?: CallOptions): Promise<void> {
    return this.settle(message, Disposition.COMPLETE, options);
  }

  async abandon(message: ReceivedMessage, options?: CallOptions): Promise<void> {
    const pending = this.session ? this.stream.beginAbandon(message) : undefined;
    try {
      await this.settle(message, Disposition.ABANDON, options);
      pending?.settled(true);
    } catch (error) {
      pending?.settled(false);
      throw error;
    }
  }

  deadLetter(
    message: ReceivedMessage,
    reason = "",
    description = "",
    options?: CallOptions,
  ): Promise<void> {
    return this.settle(message, Disposition.DEAD_LETTER, options, reason, description);
  }

  defer(message: ReceivedMessage, options?: CallOptions): Promise<void> {
    return this.settle(message, Disposition.DEFER, options);
  }

  async receiveDeferred(
    sequenceNumbers: readonly (bigint | number)[],
    options?: CallOptions,
  ): Promise<ReceivedMessage[]> {
    const route = this.sessionRoute ?? (this.rpc.brokers ? new BrokerRoute() : undefined);
    const response = await this.call(route, options, (call) =>
      this.rpc.messaging.receiveDeferred(
        {
          entityPath: this.entityPath,
          sequenceNumbers: sequenceNumbers.map((n) => BigInt(n)),
          session: this.session,
        },
        call,
      ),
    );
    const messages = response.messages.map(fromProtoMessage);
    if (route !== undefined && !this.sessionRoute) {
      for (const message of messages) this.deferredRoutes.set(message, route);
    }
    return messages;
  }

  /**
   * A unary call along `route` (see invoke); a route whose connection failed, before or
   * during the call, makes it fail with the lost lock (failureOn).
   */
  protected async call<T>(
    route: BrokerRoute | undefined,
    options: CallOptions | undefined,
    run: (connect: ConnectCallOptions) => Promise<T>,
  ): Promise<T> {
    const lost = route === undefined ? undefined : this.rpc.brokers?.routeFailure(route);
    if (lost !== undefined) throw this.lockLost(lost, lost.error);
    try {
      return await invoke(this.rpc, options, run, 0, route);
    } catch (error) {
      if (options?.signal?.aborted) throw error;
      throw this.failureOn(route, error);
    }
  }

  abstract close(options?: CallOptions): Promise<void>;

  private async settle(
    message: ReceivedMessage,
    disposition: Disposition,
    options: CallOptions | undefined,
    deadLetterReason = "",
    deadLetterDescription = "",
  ): Promise<void> {
    const route = this.routeOf(message);
    const settle = () =>
      this.settleThrough(
        route,
        message,
        disposition,
        options,
        deadLetterReason,
        deadLetterDescription,
      );
    if (!tracingOn()) return settle();
    const link = producerLink(message.applicationProperties);
    const span = startSpan({
      operation: "settle",
      name: SETTLE_NAMES[disposition],
      destination: this.entityPath,
      kind: SpanKind.CLIENT,
      ...(link ? { links: [link] } : {}),
      attributes: { "messaging.message.id": message.messageId },
    });
    try {
      await settle();
      endSpan(span);
    } catch (error) {
      endSpan(span, error);
      throw error;
    }
  }

  private async settleThrough(
    route: BrokerRoute | undefined,
    message: ReceivedMessage,
    disposition: Disposition,
    options: CallOptions | undefined,
    deadLetterReason: string,
    deadLetterDescription: string,
  ): Promise<void> {
    try {
      const lost = route === undefined ? undefined : this.rpc.brokers?.routeFailure(route);
      if (lost !== undefined) throw this.lockLost(lost, lost.error);
      try {
        await this.rpc.settler.settle(
          {
            entityPath: this.entityPath,
            lockTokens: [message.lockToken],
            disposition,
            deadLetterReason,
            deadLetterDescription,
            session: this.session,
          },
          options,
          route,
        );
      } catch (error) {
        if (options?.signal?.aborted) throw error;
        throw this.failureOn(route, error);
      }
    } catch (error) {
      if (
        error instanceof MessageLockLostError ||
        error instanceof MessageAlreadySettledError ||
        error instanceof SessionLockLostError
      ) {
        this.stream.settled(message.lockToken);
      }
      throw error;
    }
    this.stream.settled(message.lockToken);
  }
}
