/**
 * Tells a failed connection to a broker apart from an answer of the broker. Only the former
 * moves a client with several broker addresses to the next one: every broker shares one
 * store, so an error the broker sent (STORE_UNAVAILABLE included) would be the same on any
 * other.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema } from "../../../gen/ts/sessionbus/v1/error_detail_pb.js";

/**
 * "unsent": the request cannot have reached a broker (no connection could be made, or the
 * server refused the HTTP/2 stream before reading it): any call may go to another broker.
 * "broken": the connection failed while the call was under way: the broker may have acted
 * on it.
 */
export type ConnectionFailure = "unsent" | "broken";

/** Node error codes of a connection that could not be made. */
const UNSENT_CODES = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  // A new stream on a connection that had received GOAWAY or was already destroyed.
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_INVALID_SESSION",
]);

/** Node error codes of a connection that went away under a call. */
const BROKEN_CODES = new Set([
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ERR_STREAM_DESTROYED",
  "ERR_HTTP2_INVALID_STREAM",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_STREAM_ERROR",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_PING_CANCEL",
]);

/**
 * What kind of connection failure `error` is, or undefined when it is none: an answer of the
 * broker (it carries an ErrorDetail), a deadline, or the caller's own cancellation (`signal`
 * aborted).
 */
export function connectionFailure(
  error: unknown,
  signal: AbortSignal | undefined,
): ConnectionFailure | undefined {
  if (signal?.aborted || !(error instanceof ConnectError)) return undefined;
  if (error.findDetails(ErrorDetailSchema).length > 0) return undefined;
  const codes = nodeErrorCodes(error);
  if (codes.some((code) => UNSENT_CODES.has(code))) return "unsent";
  // "connect ETIMEDOUT": the connection was never made.
  if (codes.includes("ETIMEDOUT") && syscalls(error).includes("connect")) return "unsent";
  switch (error.code) {
    case Code.Unavailable:
      // RST_STREAM REFUSED_STREAM: the server did no work on the stream (RFC 9113, 8.7).
      return /REFUSED_STREAM/.test(error.rawMessage) ? "unsent" : "broken";
    case Code.Canceled:
      // Not the caller's cancellation: the HTTP/2 connection closed under the stream.
      return "broken";
    default:
      return codes.some((code) => BROKEN_CODES.has(code)) ? "broken" : undefined;
  }
}

function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let each: unknown = error; each instanceof Error && !chain.includes(each); ) {
    chain.push(each);
    each = (each as { cause?: unknown }).cause;
  }
  return chain;
}

function nodeErrorCodes(error: unknown): string[] {
  return causes(error).flatMap((each) => {
    const code = (each as { code?: unknown }).code;
    return typeof code === "string" ? [code] : [];
  });
}

function syscalls(error: unknown): string[] {
  return causes(error).flatMap((each) => {
    const syscall = (each as { syscall?: unknown }).syscall;
    return typeof syscall === "string" ? [syscall] : [];
  });
}
