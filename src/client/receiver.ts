/** The receiver of an entity without sessions (a queue, or a dead-letter queue). */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { BaseReceiver, type MessageReceiver, type ReceiveModeName } from "./base-receiver.js";
import { RECEIVER_DEFAULTS, withDefaults } from "./defaults.js";
import type { ReceivedMessage } from "./message.js";
import type { CallOptions, Rpc } from "./rpc.js";

export interface ReceiverOptions {
  /**
   * Messages the receiver may hold unsettled at once (read ahead). Receivers of one entity
   * compete, so a larger prefetch takes messages others could be working on. At most 1000.
   * @default 1
   */
  prefetch?: number | undefined;
  /**
   * "peekLock": each message is locked until settled; "receiveAndDelete": removed as it is
   * delivered (at most once, nothing to settle).
   * @default "peekLock"
   */
  receiveMode?: ReceiveModeName | undefined;
}

/** Receives and settles the messages of an entity without sessions. */
export interface Receiver extends MessageReceiver {
  /** Extends the message's lock by the entity's lock_duration; returns the new expiry. */
  renewLock(message: ReceivedMessage, options?: CallOptions): Promise<Date>;
}

export function createReceiver(rpc: Rpc, entityPath: string, options?: ReceiverOptions): Receiver {
  const { prefetch, receiveMode } = withDefaults(RECEIVER_DEFAULTS, options);
  return new PlainReceiver(rpc, entityPath, prefetch, receiveMode, undefined);
}

class PlainReceiver extends BaseReceiver implements Receiver {
  async renewLock(message: ReceivedMessage, options?: CallOptions): Promise<Date> {
    // Through the broker that delivered it: the lock token is known there only.
    const response = await this.call(this.routeOf(message), options, (call) =>
      this.rpc.messaging.renewMessageLock(
        { entityPath: this.entityPath, lockTokens: [message.lockToken] },
        call,
      ),
    );
    const [until] = response.lockedUntil;
    const lockedUntil = until ? timestampDate(until) : new Date();
    message.lockedUntil = lockedUntil;
    return lockedUntil;
  }

  async close(): Promise<void> {
    // The locks of unsettled messages run out on their own; the broker redelivers them.
    this.closed = true;
    this.stream.close();
  }
}
