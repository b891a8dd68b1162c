/**
 * Broker failures, one class per reason of semantics §7. Handlers throw these only; the
 * server maps them to gRPC status codes in one place (src/server/error-mapping.ts).
 */

/** Where an error points: the entity, session and request field it is about. */
export interface ErrorSubject {
  entityPath?: string;
  sessionId?: string;
  field?: string;
  /** 1-based character position in the field's value, for parse errors. */
  position?: number;
  /** For MISSING_RIGHT: the right the call needed. */
  missingRight?: string;
}

export abstract class BrokerError extends Error {
  abstract readonly reason: string;
  readonly subject: ErrorSubject;

  constructor(message: string, subject: ErrorSubject = {}, options?: ErrorOptions) {
    super(message, options);
    this.subject = subject;
  }
}

export class EntityNotFoundError extends BrokerError {
  override readonly name = "EntityNotFoundError";
  readonly reason = "ENTITY_NOT_FOUND";
  constructor(entityPath: string) {
    super(`Entity "${entityPath}" does not exist; create it first or check the path.`, {
      entityPath,
    });
  }
}

export class EntityAlreadyExistsError extends BrokerError {
  override readonly name = "EntityAlreadyExistsError";
  readonly reason = "ENTITY_ALREADY_EXISTS";
  constructor(entityPath: string) {
    super(`Entity "${entityPath}" already exists (paths match case-insensitively).`, {
      entityPath,
    });
  }
}

export class InvalidArgumentError extends BrokerError {
  override readonly name = "InvalidArgumentError";
  readonly reason = "INVALID_ARGUMENT";
  constructor(field: string, message: string, subject: ErrorSubject = {}) {
    super(message, { ...subject, field });
  }
}

export class MessageTooLargeError extends BrokerError {
  override readonly name = "MessageTooLargeError";
  readonly reason = "MESSAGE_TOO_LARGE";
  constructor(entityPath: string, field: string, size: number, limit: number) {
    super(
      `${field} is ${size} bytes, over the ${limit}-byte max_message_size of "${entityPath}"; send a smaller message or raise the entity's limit.`,
      { entityPath, field },
    );
  }
}

export class SessionIdRequiredError extends BrokerError {
  override readonly name = "SessionIdRequiredError";
  readonly reason = "SESSION_ID_REQUIRED";
  constructor(entityPath: string, field: string) {
    super(
      `"${entityPath}" requires sessions: every message must carry a session_id (${field} has none). Nothing of the batch was stored.`,
      { entityPath, field },
    );
  }
}

export class SessionRequiredError extends BrokerError {
  override readonly name = "SessionRequiredError";
  readonly reason = "SESSION_REQUIRED";
  constructor(entityPath: string) {
    super(
      `"${entityPath}" requires sessions: accept a session (AcceptSession) and receive under its lock.`,
      { entityPath },
    );
  }
}

export class MessageLockLostError extends BrokerError {
  override readonly name = "MessageLockLostError";
  readonly reason = "MESSAGE_LOCK_LOST";
  constructor(entityPath: string, why: string) {
    super(
      `The lock on the message of "${entityPath}" is lost (${why}); the message will be delivered again, so receive it anew.`,
      { entityPath },
    );
  }
}

export class MessageAlreadySettledError extends BrokerError {
  override readonly name = "MessageAlreadySettledError";
  readonly reason = "MESSAGE_ALREADY_SETTLED";
  constructor(entityPath: string) {
    super(
      `That message of "${entityPath}" was already settled with this lock token; nothing was changed.`,
      { entityPath },
    );
  }
}

export class MessageNotFoundError extends BrokerError {
  override readonly name = "MessageNotFoundError";
  readonly reason = "MESSAGE_NOT_FOUND";
  constructor(entityPath: string, sequenceNumber: bigint) {
    super(
      `"${entityPath}" has no deferred message with sequence number ${sequenceNumber}; it may have been settled already.`,
      { entityPath },
    );
  }
}

export class MessageLockedError extends BrokerError {
  override readonly name = "MessageLockedError";
  readonly reason = "MESSAGE_LOCKED";
  constructor(entityPath: string, sequenceNumber: bigint) {
    super(
      `Deferred message ${sequenceNumber} of "${entityPath}" is locked by another receiver; try again after its lock expires.`,
      { entityPath },
    );
  }
}

export class QuotaExceededError extends BrokerError {
  override readonly name = "QuotaExceededError";
  readonly reason = "QUOTA_EXCEEDED";
  constructor(entityPath: string, options?: ErrorOptions) {
    super(
      `"${entityPath}" is full (max_size_bytes reached); receive messages or raise the quota.`,
      { entityPath },
      options,
    );
  }
}

export class RequestTooLargeError extends BrokerError {
  override readonly name = "RequestTooLargeError";
  readonly reason = "REQUEST_TOO_LARGE";
  constructor(size: number | undefined, limit: number) {
    super(
      `The request${size === undefined ? "" : ` is ${size} bytes; it`} is over the ${limit}-byte limit of one request (SESSIONBUS_MAX_REQUEST_BYTES); send less per call, e.g. split a batch or a session state.`,
    );
  }
}

export class StoreUnavailableError extends BrokerError {
  override readonly name = "StoreUnavailableError";
  readonly reason = "STORE_UNAVAILABLE";
  /** `why`: what the store is missing, when known (e.g. servers down for its replicas). */
  constructor(what: string, options?: ErrorOptions, why?: string) {
    super(
      why === undefined
        ? `The message store (NATS JetStream) did not answer while ${what}; retry shortly.`
        : `The message store (NATS JetStream) failed while ${what}: ${why}.`,
      {},
      options,
    );
  }
}

export class NotSessionEntityError extends BrokerError {
  override readonly name = "NotSessionEntityError";
  readonly reason = "NOT_SESSION_ENTITY";
  constructor(entityPath: string) {
    super(
      `"${entityPath}" does not require sessions: receive from it without accepting a session.`,
      { entityPath },
    );
  }
}

export class SessionCannotBeLockedError extends BrokerError {
  override readonly name = "SessionCannotBeLockedError";
  readonly reason = "SESSION_CANNOT_BE_LOCKED";
  constructor(entityPath: string, sessionId: string, until: number) {
    super(
      `Session "${sessionId}" of "${entityPath}" is held by another receiver until ${new Date(until).toISOString()} unless renewed; accept another session or try again later.`,
      { entityPath, sessionId },
    );
  }
}

export class SessionLockLostError extends BrokerError {
  override readonly name = "SessionLockLostError";
  readonly reason = "SESSION_LOCK_LOST";
  constructor(entityPath: string, sessionId: string, why: string) {
    super(
      `The lock on session "${sessionId}" of "${entityPath}" is lost (${why}); accept the session again.`,
      { entityPath, sessionId },
    );
  }
}

export class SessionStateTooLargeError extends BrokerError {
  override readonly name = "SessionStateTooLargeError";
  readonly reason = "SESSION_STATE_TOO_LARGE";
  constructor(entityPath: string, sessionId: string, size: number, limit: number) {
    super(
      `The state for session "${sessionId}" is ${size} bytes, over the ${limit}-byte max_session_state_size_bytes of "${entityPath}"; the old state is kept. Store less, or raise the entity's limit.`,
      { entityPath, sessionId, field: "state" },
    );
  }
}

/** The entity went away while a call was using it (deleted by another client). */
export class EntityDeletedError extends BrokerError {
  override readonly name = "EntityDeletedError";
  readonly reason = "ENTITY_NOT_FOUND";
  constructor(options?: ErrorOptions) {
    super("The entity was deleted while this call was using it.", {}, options);
  }
}

/** A request–reply call whose reply did not come in time (the request is withdrawn). */
export class RequestTimedOutError extends BrokerError {
  override readonly name = "RequestTimedOutError";
  readonly reason = "REQUEST_TIMED_OUT";
  constructor(entityPath: string, replyTo: string, timeoutMs: number) {
    super(
      `No reply arrived on "${replyTo}" within ${timeoutMs} ms for the request sent to "${entityPath}"; the request was withdrawn. Check that a responder is running, or allow more time.`,
      { entityPath },
    );
  }
}

/** Receiving, peeking or locking on a topic: only its subscriptions hold messages. */
export class TopicNotReceivableError extends BrokerError {
  override readonly name = "TopicNotReceivableError";
  readonly reason = "INVALID_ARGUMENT";
  constructor(entityPath: string) {
    super(
      `"${entityPath}" is a topic; topics are only sent to. Receive from one of its subscriptions, "${entityPath}/subscriptions/<name>".`,
      { entityPath, field: "entity_path" },
    );
  }
}

/** A call without a token, on a broker that requires them. */
export class TokenMissingError extends BrokerError {
  override readonly name = "TokenMissingError";
  readonly reason = "TOKEN_MISSING";
  constructor() {
    super(
      'This broker requires a token: send "authorization: SharedAccessSignature sr=…&sig=…&se=…&skn=…" (clients do it for you when given a connection string).',
    );
  }
}

/** A token that is malformed, names no rule the broker knows, or has a wrong signature. */
export class TokenInvalidError extends BrokerError {
  override readonly name = "TokenInvalidError";
  readonly reason = "TOKEN_INVALID";
  constructor(why: string) {
    super(`The token is not valid: ${why}.`);
  }
}

/** A well-signed token past its expiry (se). */
export class TokenExpiredError extends BrokerError {
  override readonly name = "TokenExpiredError";
  readonly reason = "TOKEN_EXPIRED";
  constructor(expiredAtSeconds: number) {
    super(
      `The token expired at ${new Date(expiredAtSeconds * 1000).toISOString()}; mint a new one (clients given a connection string renew theirs).`,
    );
  }
}

/** A valid token whose rule does not grant what the call needs on its entity. */
export class MissingRightError extends BrokerError {
  override readonly name = "MissingRightError";
  readonly reason = "MISSING_RIGHT";
  constructor(right: string, entityPath: string) {
    super(
      entityPath === ""
        ? `This call needs the ${right} right on the namespace, which the token does not grant.`
        : `This call needs the ${right} right on "${entityPath}", which the token does not grant.`,
      { entityPath, missingRight: right },
    );
  }
}

/** A failure of the NATS connection or of JetStream answering, rather than of the request. */
export function isStoreOutage(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  if (!(error instanceof Error) || error instanceof BrokerError) return false;
  return /timeout|disconnect|connection|no responders|closed|unavailable|jetstream not/i.test(
    `${error.name} ${error.message}`,
  );
}
