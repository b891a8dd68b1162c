/**
 * Errors of the sessionbus client: one class per broker reason (docs/api.md, "Errors"), all
 * deriving from SessionBusError. The broker sends its reason as a sessionbus.v1.ErrorDetail
 * in the details of the status; toSessionBusError is the one place that reads it.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema } from "../../gen/ts/sessionbus/v1/error_detail_pb.js";

export interface SessionBusErrorInit {
  /** Machine-readable reason, e.g. "SESSION_LOCK_LOST"; see the error table in docs/api.md. */
  reason: string;
  /** The gRPC status code of the failure. */
  code: Code;
  entityPath?: string | undefined;
  sessionId?: string | undefined;
  /** The request field at fault (INVALID_ARGUMENT). */
  field?: string | undefined;
  /** 1-based character position in the field's value where parsing failed. */
  position?: number | undefined;
  /** The right a call lacked (MISSING_RIGHT): "Manage", "Send" or "Listen". */
  missingRight?: string | undefined;
  cause?: unknown;
}

/** A failure reported by the broker (or the connection to it). Branch on `reason`. */
export class SessionBusError extends Error {
  override readonly name: string = "SessionBusError";
  /**
   * The broker's reason ("ENTITY_NOT_FOUND", ...). Errors without one (connection
   * failures, deadlines) carry the status code's name instead, e.g. "UNAVAILABLE".
   */
  readonly reason: string;
  readonly code: Code;
  /** The entity the error is about, when there is one. */
  readonly entityPath: string | undefined;
  /** The session the error is about, when there is one. */
  readonly sessionId: string | undefined;
  /** The request field at fault, for invalid arguments. */
  readonly field: string | undefined;
  /**
   * For a parse error (a rule's SQL expression): the 1-based character position in
   * `field`'s value where the expression stops making sense; undefined otherwise.
   */
  readonly position: number | undefined;
  /**
   * For PERMISSION_DENIED (reason MISSING_RIGHT): the right the token's rule lacks for the
   * call, "Manage", "Send" or "Listen"; undefined otherwise.
   */
  readonly missingRight: string | undefined;

  constructor(message: string, init: SessionBusErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.reason = init.reason;
    this.code = init.code;
    this.entityPath = init.entityPath;
    this.sessionId = init.sessionId;
    this.field = init.field;
    this.position = init.position;
    this.missingRight = init.missingRight;
  }
}

/** ENTITY_NOT_FOUND: the queue, topic, subscription or rule does not exist. */
export class EntityNotFoundError extends SessionBusError {
  override readonly name = "EntityNotFoundError";
}
/**
 * ENTITY_ALREADY_EXISTS: a queue, topic, subscription or rule of that name (compared
 * case-insensitively) exists.
 */
export class EntityAlreadyExistsError extends SessionBusError {
  override readonly name = "EntityAlreadyExistsError";
}
/** MESSAGE_NOT_FOUND: no deferred message with that sequence number. */
export class MessageNotFoundError extends SessionBusError {
  override readonly name = "MessageNotFoundError";
}
/**
 * INVALID_ARGUMENT: a request field is out of range or malformed (`field` says which; for
 * a rule's SQL expression, `position` says where).
 */
export class InvalidArgumentError extends SessionBusError {
  override readonly name = "InvalidArgumentError";
}
/** MESSAGE_TOO_LARGE: a message over max_message_size_bytes, or a batch over 1 MiB. */
export class MessageTooLargeError extends SessionBusError {
  override readonly name = "MessageTooLargeError";
}
/** SESSION_STATE_TOO_LARGE: the state is over max_session_state_size_bytes; old state kept. */
export class SessionStateTooLargeError extends SessionBusError {
  override readonly name = "SessionStateTooLargeError";
}
/** SESSION_ID_REQUIRED: a message without session id sent to a session queue. */
export class SessionIdRequiredError extends SessionBusError {
  override readonly name = "SessionIdRequiredError";
}
/** SESSION_REQUIRED: receiving without a session from a session queue. */
export class SessionRequiredError extends SessionBusError {
  override readonly name = "SessionRequiredError";
}
/** NOT_SESSION_ENTITY: accepting a session on a queue without sessions. */
export class NotSessionEntityError extends SessionBusError {
  override readonly name = "NotSessionEntityError";
}
/** SESSION_LOCK_LOST: the session lock expired or was released; accept the session again. */
export class SessionLockLostError extends SessionBusError {
  override readonly name = "SessionLockLostError";
}
/** MESSAGE_LOCK_LOST: unknown, expired, recalled or foreign lock token. */
export class MessageLockLostError extends SessionBusError {
  override readonly name = "MessageLockLostError";
}
/** MESSAGE_ALREADY_SETTLED: the delivery was already settled with this token. */
export class MessageAlreadySettledError extends SessionBusError {
  override readonly name = "MessageAlreadySettledError";
}
/** SESSION_CANNOT_BE_LOCKED: another receiver holds the session. */
export class SessionCannotBeLockedError extends SessionBusError {
  override readonly name = "SessionCannotBeLockedError";
}
/** MESSAGE_LOCKED: the deferred message is locked by a receiver. */
export class MessageLockedError extends SessionBusError {
  override readonly name = "MessageLockedError";
}
/** QUOTA_EXCEEDED: the queue reached max_size_bytes. */
export class QuotaExceededError extends SessionBusError {
  override readonly name = "QuotaExceededError";
}
/** STORE_UNAVAILABLE: NATS JetStream did not answer the broker; retry. */
export class StoreUnavailableError extends SessionBusError {
  override readonly name = "StoreUnavailableError";
}
/**
 * UNAUTHENTICATED: the call carried no token (TOKEN_MISSING), one the broker does not accept
 * (TOKEN_INVALID: malformed, unknown rule, wrong signature or resource) or an expired one
 * (TOKEN_EXPIRED). Pass a connection string or a fresh token. Also the error of a call whose
 * sharedAccessSignature function failed (its error is the cause).
 */
export class UnauthenticatedError extends SessionBusError {
  override readonly name = "UnauthenticatedError";
}
/**
 * PERMISSION_DENIED (reason MISSING_RIGHT): the token is valid, but its rule lacks the right
 * the call needs, named in `missingRight`, or does not cover the entity.
 */
export class PermissionDeniedError extends SessionBusError {
  override readonly name = "PermissionDeniedError";
}
/** requestReply got no reply within its timeout (reason "REQUEST_TIMED_OUT"); the request was withdrawn. */
export class RequestTimeoutError extends SessionBusError {
  override readonly name = "RequestTimeoutError";
}

type ErrorClass = new (message: string, init: SessionBusErrorInit) => SessionBusError;

/** The class of each broker reason. */
const CLASSES: Record<string, ErrorClass> = {
  ENTITY_NOT_FOUND: EntityNotFoundError,
  ENTITY_ALREADY_EXISTS: EntityAlreadyExistsError,
  MESSAGE_NOT_FOUND: MessageNotFoundError,
  INVALID_ARGUMENT: InvalidArgumentError,
  MESSAGE_TOO_LARGE: MessageTooLargeError,
  SESSION_STATE_TOO_LARGE: SessionStateTooLargeError,
  SESSION_ID_REQUIRED: SessionIdRequiredError,
  SESSION_REQUIRED: SessionRequiredError,
  NOT_SESSION_ENTITY: NotSessionEntityError,
  SESSION_LOCK_LOST: SessionLockLostError,
  MESSAGE_LOCK_LOST: MessageLockLostError,
  MESSAGE_ALREADY_SETTLED: MessageAlreadySettledError,
  SESSION_CANNOT_BE_LOCKED: SessionCannotBeLockedError,
  MESSAGE_LOCKED: MessageLockedError,
  QUOTA_EXCEEDED: QuotaExceededError,
  STORE_UNAVAILABLE: StoreUnavailableError,
  TOKEN_MISSING: UnauthenticatedError,
  TOKEN_INVALID: UnauthenticatedError,
  TOKEN_EXPIRED: UnauthenticatedError,
  UNAUTHENTICATED: UnauthenticatedError,
  MISSING_RIGHT: PermissionDeniedError,
  PERMISSION_DENIED: PermissionDeniedError,
  REQUEST_TIMED_OUT: RequestTimeoutError,
  REQUEST_TIMEOUT: RequestTimeoutError, // the reason before the broker had RequestReply
};

/**
 * The class of a reason the table above does not know, by status code: authorization
 * failures keep their class whatever reason a newer broker (or a proxy) gives.
 */
const CLASSES_OF_CODE: Partial<Record<Code, ErrorClass>> = {
  [Code.Unauthenticated]: UnauthenticatedError,
  [Code.PermissionDenied]: PermissionDeniedError,
};

/**
 * Turns what an RPC threw into a SessionBusError of the class of its reason, cause kept.
 * Anything that is not an RPC failure (a bug in the caller's code, say) is returned as is.
 */
export function toSessionBusError(error: unknown): unknown {
  if (error instanceof SessionBusError || !(error instanceof ConnectError)) return error;
  const [detail] = error.findDetails(ErrorDetailSchema);
  const reason = detail?.reason || codeName(error.code);
  const ErrorOfReason = CLASSES[reason] ?? CLASSES_OF_CODE[error.code] ?? SessionBusError;
  return new ErrorOfReason(error.rawMessage, {
    reason,
    code: error.code,
    entityPath: detail?.entityPath || undefined,
    sessionId: detail?.sessionId,
    field: detail?.field || undefined,
    // 0 on the wire means "not about a position".
    position: detail?.position || undefined,
    missingRight: detail?.missingRight || undefined,
    cause: error,
  });
}

/** "DeadlineExceeded" -> "DEADLINE_EXCEEDED". */
function codeName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
