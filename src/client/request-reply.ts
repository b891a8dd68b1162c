/**
 * Request–reply over sessions (semantics §5) through the broker's RequestReply RPC: one call
 * sends the request with reply_to = a session-enabled reply queue and reply_to_session_id =
 * this client's instance id, and returns the reply whose correlation id is the request's
 * message id. The broker holds the instance's reply session while calls wait (concurrent
 * calls share it), completes the reply, and withdraws a request that got none in time.
 */
import { setMaxListeners } from "node:events";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { REQUEST_REPLY_DEFAULTS, withDefaults } from "./defaults.js";
import {
  fromProtoMessage,
  type MessageToSend,
  type ReceivedMessage,
  toProtoMessage,
} from "./message.js";
import { invoke, type Rpc } from "./rpc.js";
import { messageAttributes, stampProducer } from "./sender.js";
import { inSpan, producerLink, SpanKind } from "./tracing.js";

/**
 * Added to the call's deadline on top of the request's timeout: the broker ends the call at
 * the timeout itself (REQUEST_TIMED_OUT), so its answer must not be cut off by the deadline.
 */
const DEADLINE_GRACE_MS = 5_000;

export interface RequestReplyOptions {
  /** The session-enabled queue replies come back on (required). */
  replyQueue: string;
  /** How long to wait for the reply, sending included. @default 60_000 */
  timeoutMs?: number | undefined;
  /** Cancels the wait; the call then rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
}

/** The requests of one client instance. */
export class Requester {
  /** Aborts the calls still waiting when the client closes. */
  private readonly closing = new AbortController();

  constructor(
    private readonly rpc: Rpc,
    private readonly instanceId: string,
  ) {
    setMaxListeners(0, this.closing.signal); // every waiting call listens to it
  }

  async request(
    requestQueue: string,
    request: MessageToSend,
    options: RequestReplyOptions,
  ): Promise<ReceivedMessage> {
    const { timeoutMs } = withDefaults(REQUEST_REPLY_DEFAULTS, options);
    options.signal?.throwIfAborted();
    if (this.closing.signal.aborted) throw new Error("The sessionbus client is closed");
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.closing.signal])
      : this.closing.signal;
    const spec = {
      operation: "send",
      name: "request-reply",
      destination: requestQueue,
      kind: SpanKind.CLIENT,
      attributes: { ...messageAttributes([request]), "sessionbus.reply_to": options.replyQueue },
    };
    return inSpan(spec, async (span) => {
      const proto = toProtoMessage(request);
      if (span) stampProducer([proto], span);
      const response = await invoke(
        this.rpc,
        { signal, timeoutMs, span },
        (call) =>
          this.rpc.messaging.requestReply(
            {
              entityPath: requestQueue,
              request: proto,
              replyTo: options.replyQueue,
              instanceId: this.instanceId,
              timeout: durationFromMs(timeoutMs),
            },
            call,
          ),
        DEADLINE_GRACE_MS,
      );
      if (!response.reply) throw new Error(`RequestReply to "${requestQueue}" returned no reply`);
      const reply = fromProtoMessage(response.reply);
      // The reply's producer: the responder's span that answered.
      const link = span && producerLink(reply.applicationProperties);
      if (link) span?.addLink(link);
      return reply;
    });
  }

  /** Calls still waiting reject; the broker then withdraws their requests. */
  async close(): Promise<void> {
    this.closing.abort(new Error("The sessionbus client was closed before the reply arrived"));
  }
}
