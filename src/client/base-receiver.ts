/**
 * What both receivers share: taking messages from a ReceiveStream and settling them by lock
 * token (under the session lock, for session receivers).
 */
import { Disposition, ReceiveMode } from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import {
  MessageAlreadySettledError,
  MessageLockLostError,
  SessionLockLostError,
} from "./errors.js";
import { fromProtoMessage, type ReceivedMessage } from "./message.js";
import { ReceiveStream } from "./receive-stream.js";
import { type CallOptions, invoke, type Rpc } from "./rpc.js";

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

  constructor(
    protected readonly rpc: Rpc,
    readonly entityPath: string,
    prefetch: number,
    receiveMode: ReceiveModeName,
    protected readonly session: SessionRef | undefined,
  ) {
    this.stream = new ReceiveStream(
      (signal) =>
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
          { signal },
        ),
      prefetch,
    );
  }

  receiveMessage(options?: ReceiveOptions): Promise<ReceivedMessage | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    return this.stream.next(options?.maxWaitMs, options?.signal);
  }

  async receiveMessages(maxMessages: number, options?: ReceiveOptions): Promise<ReceivedMessage[]> {
    const first = await this.receiveMessage(options);
    if (!first) return [];
    const received = [first];
    while (received.length < maxMessages) {
      const more = await this.receiveMessage({ maxWaitMs: 0, signal: options?.signal });
      if (!more) break;
      received.push(more);
    }
    return received;
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
    const response = await invoke(this.rpc, options, (call) =>
      this.rpc.messaging.receiveDeferred(
        {
          entityPath: this.entityPath,
          sequenceNumbers: sequenceNumbers.map((n) => BigInt(n)),
          session: this.session,
        },
        call,
      ),
    );
    return response.messages.map(fromProtoMessage);
  }

  abstract close(options?: CallOptions): Promise<void>;

  private async settle(
    message: ReceivedMessage,
    disposition: Disposition,
    options: CallOptions | undefined,
    deadLetterReason = "",
    deadLetterDescription = "",
  ): Promise<void> {
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
      );
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
