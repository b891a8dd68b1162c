/** Reading messages without locking them. */
import { fromProtoMessage, type ReceivedMessage } from "./message.js";
import { type CallOptions, invoke, type Rpc } from "./rpc.js";

export interface PeekOptions extends CallOptions {
  /** First sequence number to look at. @default 0 (the oldest message) */
  fromSequenceNumber?: bigint | number | undefined;
  /** At most 250. @default 1 (the broker's) */
  maxMessages?: number | undefined;
  /** Only the messages of this session (no lock needed). @default every message */
  sessionId?: string | undefined;
}

/**
 * Up to `maxMessages` messages in sequence order, active, deferred and locked ones alike,
 * with their state; fewer when the entity has no more.
 */
export async function peek(
  rpc: Rpc,
  entityPath: string,
  options?: PeekOptions,
): Promise<ReceivedMessage[]> {
  const response = await invoke(rpc, options, (call) =>
    rpc.messaging.peek(
      {
        entityPath,
        fromSequenceNumber: BigInt(options?.fromSequenceNumber ?? 0),
        maxMessages: options?.maxMessages ?? 0,
        sessionId: options?.sessionId,
      },
      call,
    ),
  );
  return response.messages.map(fromProtoMessage);
}
