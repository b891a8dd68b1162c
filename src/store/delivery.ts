/**
 * What a pull from a JetStream consumer hands out, shared by the pulls of message-streams.ts
 * and the raw short pull of short-pull.ts.
 */

/** A message handed out by a stream's consumer, with the ways to settle it. */
export interface Delivery {
  streamSequence: number;
  /** The consumer's count of its deliveries (all messages), 1 on its first. */
  consumerSequence: number;
  /** JetStream's count of deliveries of this message, 1 on the first. */
  deliveryCount: number;
  subject: string;
  data: Uint8Array;
  /** Removes the message (work-queue stream: an ack deletes it); waits for the server. */
  ack(): Promise<void>;
  /** Hands the message back for redelivery, at once or after `delayMs`. */
  nak(delayMs?: number): Promise<void>;
  /** Restarts the server-side lock timer (ack_wait). */
  extend(): Promise<void>;
}

/** A running pull of messages: iterate it; stop() ends it early. */
export interface DeliveryBatch extends AsyncIterable<Delivery> {
  stop(): void;
}
