/**
 * The responder side of request–reply (semantics §5): receives requests from a queue
 * without sessions, sends each handler's reply to the request's reply_to with session_id =
 * its reply_to_session_id and correlation_id = its message_id, then completes the request.
 */
import { setMaxListeners } from "node:events";
import { RESPONDER_DEFAULTS, withDefaults } from "./defaults.js";
import type { MessageToSend, ReceivedMessage } from "./message.js";
import { createReceiver, type Receiver } from "./receiver.js";
import { pause, retryDelayMs } from "./retry.js";
import type { Rpc } from "./rpc.js";
import { createSender } from "./sender.js";
import {
  endSpan,
  failSpan,
  producerLink,
  runInSpan,
  SpanKind,
  startSpan,
  tracingOn,
} from "./tracing.js";

/**
 * Computes the reply to a request. Throwing abandons the request (it comes again).
 * `context.signal` aborts when the responder is closed.
 */
export type ResponderHandler = (
  request: ReceivedMessage,
  context: { signal: AbortSignal },
) => MessageToSend | Promise<MessageToSend>;

export interface ResponderOptions {
  /** Requests handled at once (also the receive prefetch). @default 16 */
  maxConcurrentCalls?: number | undefined;
  /**
   * Called with what goes wrong: a handler that threw (its request is abandoned), a reply
   * that could not be sent, a failed receive (retried after a pause).
   * @default ignore
   */
  onError?: ((error: unknown, request: ReceivedMessage | undefined) => void) | undefined;
}

export interface Responder {
  readonly requestQueue: string;
  /** Stops taking requests, lets the running handlers finish, and resolves. */
  close(): Promise<void>;
}

export function createResponder(
  rpc: Rpc,
  requestQueue: string,
  handler: ResponderHandler,
  options?: ResponderOptions,
): Responder {
  const { maxConcurrentCalls } = withDefaults(RESPONDER_DEFAULTS, options);
  const report = (error: unknown, request: ReceivedMessage | undefined) => {
    try {
      options?.onError?.(error, request);
    } catch {
      // the error handler's own failure has nowhere to go
    }
  };
  const closing = new AbortController();
  const { signal } = closing;
  setMaxListeners(0, signal); // every worker waits on it
  let receiver = createReceiver(rpc, requestQueue, { prefetch: maxConcurrentCalls });
  let failures = 0;

  /** Handles one request, in a span linked to the request's producer when traced. */
  const respond = async (request: ReceivedMessage, from: Receiver) => {
    if (!tracingOn()) return answer(request, from, undefined);
    const link = producerLink(request.applicationProperties);
    const span = startSpan({
      operation: "process",
      destination: requestQueue,
      kind: SpanKind.CONSUMER,
      ...(link ? { links: [link] } : {}),
      attributes: { "messaging.message.id": request.messageId },
    });
    try {
      await runInSpan(span, () => answer(request, from, span));
    } finally {
      endSpan(span);
    }
  };

  const answer = async (
    request: ReceivedMessage,
    from: Receiver,
    span: ReturnType<typeof startSpan>,
  ) => {
    let reply: MessageToSend;
    try {
      reply = await handler(request, { signal });
    } catch (error) {
      failSpan(span, error);
      report(error, request);
      await from.abandon(request).catch((e: unknown) => report(e, request));
      return;
    }
    try {
      if (request.replyTo !== "") {
        await createSender(rpc, request.replyTo).send({
          ...reply,
          sessionId: request.replyToSessionId,
          correlationId: request.messageId,
        });
      }
      await from.complete(request);
    } catch (error) {
      report(error, request);
    }
  };

  /** Replaces a receiver whose stream failed or ended (once, whichever worker sees it). */
  const replace = async (broken: Receiver, error: unknown) => {
    if (receiver !== broken) return;
    failures++;
    receiver = createReceiver(rpc, requestQueue, { prefetch: maxConcurrentCalls });
    if (error !== undefined) report(error, undefined);
    await broken.close();
  };

  const worker = async () => {
    while (!signal.aborted) {
      const from = receiver;
      let request: ReceivedMessage | undefined;
      let failure: unknown;
      try {
        request = await from.receiveMessage({ signal });
      } catch (error) {
        if (signal.aborted) return;
        failure = error;
      }
      if (!request) {
        if (signal.aborted) return;
        // The stream failed, or ended (the broker shut down): a new one, after a pause.
        await replace(from, failure);
        await pause(retryDelayMs(failures), signal);
        continue;
      }
      failures = 0;
      await respond(request, from);
    }
  };

  const workers = Promise.all(Array.from({ length: maxConcurrentCalls }, worker));
  return {
    requestQueue,
    async close() {
      closing.abort();
      await workers;
      await receiver.close();
    },
  };
}
