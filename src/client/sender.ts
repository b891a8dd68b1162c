/** Sends messages to one entity. */
import { type MessageToSend, type SendResult, toProtoMessage } from "./message.js";
import { type CallOptions, invoke, type Rpc } from "./rpc.js";

export interface Sender {
  readonly entityPath: string;
  /** Stores one message; resolves with its sequence number. */
  send(message: MessageToSend, options?: CallOptions): Promise<SendResult>;
  /**
   * Stores a batch, all or nothing (at most 4,500 messages and 1 MiB together); the results
   * come in the order sent.
   */
  sendBatch(messages: readonly MessageToSend[], options?: CallOptions): Promise<SendResult[]>;
}

export function createSender(rpc: Rpc, entityPath: string): Sender {
  const sendBatch = async (messages: readonly MessageToSend[], options?: CallOptions) => {
    const response = await invoke(rpc, options, (call) =>
      rpc.messaging.send({ entityPath, messages: messages.map(toProtoMessage) }, call),
    );
    return response.results.map(({ sequenceNumber, messageId, duplicate }) => ({
      sequenceNumber,
      messageId,
      duplicate,
    }));
  };
  return {
    entityPath,
    sendBatch,
    async send(message, options) {
      const [result] = await sendBatch([message], options);
      if (!result) throw new Error(`Send to "${entityPath}" returned no result`);
      return result;
    },
  };
}
