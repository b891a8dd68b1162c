/** Sends messages to one entity. */
import { create } from "@bufbuild/protobuf";
import type { Span } from "@opentelemetry/api";
import {
  PropertyValueSchema,
  type Message as ProtoMessage,
} from "../../gen/ts/sessionbus/v1/message_pb.js";
import { type MessageToSend, type SendResult, toProtoMessage } from "./message.js";
import { type CallOptions, invoke, type Rpc } from "./rpc.js";
import { DIAGNOSTIC_ID_PROPERTY, inSpan, SpanKind, toTraceparent } from "./tracing.js";

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
  const sendBatch = (messages: readonly MessageToSend[], options?: CallOptions) =>
    inSpan(
      {
        operation: "send",
        destination: entityPath,
        kind: SpanKind.PRODUCER,
        attributes: messageAttributes(messages),
      },
      async (span) => {
        const protos = messages.map(toProtoMessage);
        if (span) stampProducer(protos, span);
        const response = await invoke(rpc, span ? { ...options, span } : options, (call) =>
          rpc.messaging.send({ entityPath, messages: protos }, call),
        );
        return response.results.map(({ sequenceNumber, messageId, duplicate }) => ({
          sequenceNumber,
          messageId,
          duplicate,
        }));
      },
    );
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

/** The span attributes of a send of `messages`: the message id of one, the count of many. */
export function messageAttributes(
  messages: readonly MessageToSend[],
): Record<string, string | number> {
  if (messages.length !== 1) return { "messaging.batch.message_count": messages.length };
  const [only] = messages;
  return only?.messageId ? { "messaging.message.id": only.messageId } : {};
}

/**
 * Gives each message the `traceparent` of the span sending it, in its `Diagnostic-Id`
 * property, unless it carries one already (a message passed on keeps its producer's).
 */
export function stampProducer(messages: ProtoMessage[], span: Span): void {
  const traceparent = toTraceparent(span.spanContext());
  for (const message of messages) {
    if (message.applicationProperties[DIAGNOSTIC_ID_PROPERTY] !== undefined) continue;
    message.applicationProperties[DIAGNOSTIC_ID_PROPERTY] = create(PropertyValueSchema, {
      value: { case: "stringValue", value: traceparent },
    });
  }
}
