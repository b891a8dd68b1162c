/**
 * The RPC clients the SDK is built on, and the one wrapper every unary call goes through:
 * cancellation by AbortSignal, a deadline, and failures turned into SessionBusErrors.
 */
import type { Client, ContextValues } from "@connectrpc/connect";
import type { Span } from "@opentelemetry/api";
import type { AdminService } from "../../gen/ts/sessionbus/v1/admin_service_pb.js";
import type { MessagingService } from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import type { CallOptions } from "./call-options.js";
import { toSessionBusError } from "./errors.js";
import { type BrokerRoute, type BrokerRouting, routeValues } from "./failover/broker-route.js";
import type { StreamSettler } from "./stream-settler.js";
import { traceHeaders } from "./tracing.js";

export type { CallOptions } from "./call-options.js";

/** What the parts of the SDK share: the two service clients and the call deadline. */
export interface Rpc {
  messaging: Client<typeof MessagingService>;
  admin: Client<typeof AdminService>;
  /** Settles as frames of a SettleStream. */
  settler: StreamSettler;
  callTimeoutMs: number;
  /**
   * The brokers, when the client has several addresses: calls that must stay with one
   * broker carry a route, and a route whose connection failed is lost. Undefined with one
   * address (or a transport of the caller's), where every call goes to the same place.
   */
  brokers: BrokerRouting | undefined;
}

/** What a call passes to the generated client: cancellation, deadline and its route. */
export interface ConnectCallOptions {
  signal: AbortSignal | undefined;
  timeoutMs: number;
  contextValues?: ContextValues;
  /** The `traceparent` of the operation's span, when traced. */
  headers?: Record<string, string>;
}

/** The options of a call the SDK traces: the span whose `traceparent` the call sends. */
export interface TracedCallOptions extends CallOptions {
  span?: Span | undefined;
}

/**
 * Runs one unary call with the caller's signal and deadline, along `route` when given (with
 * several brokers: the route's broker, or the one that answers is noted in the route). An
 * aborted call rejects with the signal's reason; every other failure becomes a
 * SessionBusError of its reason.
 */
export async function invoke<T>(
  rpc: Rpc,
  options: TracedCallOptions | undefined,
  call: (connect: ConnectCallOptions) => Promise<T>,
  extraTimeoutMs = 0,
  route?: BrokerRoute,
): Promise<T> {
  const signal = options?.signal;
  signal?.throwIfAborted();
  const headers = traceHeaders(options?.span);
  try {
    return await call({
      signal,
      timeoutMs: (options?.timeoutMs ?? rpc.callTimeoutMs) + extraTimeoutMs,
      ...(route === undefined ? {} : { contextValues: routeValues(route) }),
      ...(headers === undefined ? {} : { headers }),
    });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw toSessionBusError(error);
  }
}
