import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema } from "../../gen/ts/sessionbus/v1/error_detail_pb.js";
import { BrokerError, EntityDeletedError, StoreUnavailableError } from "../broker/errors.js";
import { log } from "../observability/logger.js";

/** gRPC status of each broker reason (semantics §7); the only place codes are chosen. */
const CODES: Record<string, Code> = {
  ENTITY_NOT_FOUND: Code.NotFound, // the entity does not exist
  MESSAGE_NOT_FOUND: Code.NotFound, // no deferred message with that sequence number
  ENTITY_ALREADY_EXISTS: Code.AlreadyExists, // create of an existing path
  INVALID_ARGUMENT: Code.InvalidArgument, // a request field is malformed
  MESSAGE_TOO_LARGE: Code.InvalidArgument, // over max_message_size or the batch limit
  SESSION_STATE_TOO_LARGE: Code.InvalidArgument, // over max_session_state_size
  SESSION_ID_REQUIRED: Code.FailedPrecondition, // session-less send to a session entity
  SESSION_REQUIRED: Code.FailedPrecondition, // session-less receive from a session entity
  NOT_SESSION_ENTITY: Code.FailedPrecondition, // session accept on a plain entity
  SESSION_LOCK_LOST: Code.FailedPrecondition, // the session lock expired or was released
  MESSAGE_LOCK_LOST: Code.FailedPrecondition, // unknown, expired or foreign lock token
  MESSAGE_ALREADY_SETTLED: Code.FailedPrecondition, // second settle of one delivery
  SESSION_CANNOT_BE_LOCKED: Code.Aborted, // the session is held by another receiver
  MESSAGE_LOCKED: Code.Aborted, // the deferred message is held by another receiver
  QUOTA_EXCEEDED: Code.ResourceExhausted, // the entity is full
  REQUEST_TOO_LARGE: Code.ResourceExhausted, // one request over the server's size cap
  REQUEST_TIMED_OUT: Code.DeadlineExceeded, // RequestReply got no reply in time
  STORE_UNAVAILABLE: Code.Unavailable, // NATS JetStream did not answer
  TOKEN_MISSING: Code.Unauthenticated, // no authorization header or metadata
  TOKEN_INVALID: Code.Unauthenticated, // malformed, unknown rule or bad signature
  TOKEN_EXPIRED: Code.Unauthenticated, // past its `se`
  MISSING_RIGHT: Code.PermissionDenied, // the rule lacks Manage, Send or Listen there
};

/** Turns anything a handler throws into the ConnectError a client sees, cause kept. */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  const broker = error instanceof BrokerError ? error : fromUnknown(error);
  if (!broker && isCancellation(error)) {
    return new ConnectError("The call was cancelled.", Code.Canceled, undefined, undefined, error);
  }
  if (!broker) {
    // Not a failure the broker knows: the client gets a generic message, the log the rest.
    log.error({ err: error }, "internal error (a bug): the client was told INTERNAL");
    return new ConnectError(
      "Internal error in sessionbus; see the broker's log.",
      Code.Internal,
      undefined,
      undefined,
      error,
    );
  }
  // An error often names the value that was refused, and that value may be megabytes long:
  // everything is clipped, since it travels in headers (grpc-message and
  // grpc-status-details-bin) that a client refuses past its header size limit — grpc-js
  // then drops the whole connection, with every other call on it.
  const { subject } = broker;
  const detail = create(ErrorDetailSchema, {
    reason: broker.reason,
    field: clip(subject.field ?? "", MAX_DETAIL_CHARACTERS),
    entityPath: clip(subject.entityPath ?? "", MAX_DETAIL_CHARACTERS),
    sessionId:
      subject.sessionId === undefined ? undefined : clip(subject.sessionId, MAX_DETAIL_CHARACTERS),
    position: subject.position ?? 0,
    missingRight: subject.missingRight ?? "",
  });
  return new ConnectError(
    clip(broker.message, MAX_MESSAGE_CHARACTERS),
    CODES[broker.reason] ?? Code.Internal,
    undefined,
    [{ desc: ErrorDetailSchema, value: detail }],
    broker,
  );
}

/** Longest error text sent: every limit of semantics §8 is named in far less. */
const MAX_MESSAGE_CHARACTERS = 2048;
/** Longest entity path, session id or field name in an ErrorDetail (valid ones are shorter). */
const MAX_DETAIL_CHARACTERS = 300;

/** `text` cut to at most `max` UTF-16 units (never inside a surrogate pair), marked with "…". */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/**
 * Errors of the NATS client (timeouts, lost connection, a publish nobody answered) mean the
 * store is unavailable; so does JetStream's "JetStream system temporarily unavailable" (a
 * cluster without a meta leader: a majority of its servers is down, or it is electing one).
 */
function fromUnknown(error: unknown): BrokerError | undefined {
  if (!(error instanceof Error)) return undefined;
  // JetStream's answer when a stream or consumer in use is deleted with its entity.
  if (/consumer deleted|stream not found|consumer not found/i.test(error.message)) {
    return new EntityDeletedError({ cause: error });
  }
  // nats.js reports a JetStream publish nobody answered (a stream between two leaders, e.g.
  // right after a server of a cluster died) as "jetstream is not enabled".
  const natsError =
    /timeout|disconnect|connection|no responders|closed|temporarily unavailable|jetstream is not enabled/i;
  if (natsError.test(error.name) || natsError.test(error.message)) {
    return new StoreUnavailableError("handling the request", { cause: error });
  }
  return undefined;
}

/** A client that cancels a call or goes away mid-stream: normal, not worth a log line. */
function isCancellation(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  return (
    error.name === "AbortError" ||
    code === "ERR_STREAM_DESTROYED" ||
    // A client stream (SendStream, SettleStream) whose client went away mid-stream.
    code === "ERR_STREAM_PREMATURE_CLOSE" ||
    /premature close/i.test(error.message) ||
    /stream has been destroyed/i.test(error.message)
  );
}
