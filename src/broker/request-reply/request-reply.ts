import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import {
  type Message,
  MessageSchema,
  type ReceivedMessage,
} from "../../../gen/ts/sessionbus/v1/message_pb.js";
import type { SendResult } from "../../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import type { Store } from "../../store/store.js";
import {
  type ResolvedEntity,
  resolveEntity,
  resolveSendTarget,
} from "../entities/entity-resolver.js";
import {
  InvalidArgumentError,
  NotSessionEntityError,
  RequestTimedOutError,
  StoreUnavailableError,
} from "../errors.js";
import { checkCharacterLimit } from "../limits/character-limits.js";
import { MAX_ID_LENGTH, validateSingleMessage } from "../messages/message-validation.js";
import { ReplySession, type ReplySessionDeps } from "./reply-session.js";

/** @default 60_000 — how long a RequestReply call waits when the request names no timeout. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/**
 * Taken off the caller's own deadline, so that the call ends (request withdrawn, session
 * released) and answers REQUEST_TIMED_OUT before the client gives up on its own.
 * @default 1000 (at most half of what is left)
 */
const DEADLINE_MARGIN_MS = 1000;

export interface RequestReplyCall {
  /** Where the request goes (a queue or topic). */
  entityPath: string;
  request: Message | undefined;
  /** A session-enabled queue the responder replies to. */
  replyTo: string;
  /** The caller's instance id, the reply session; generated when empty. */
  instanceId: string;
  /** The request's own timeout; 0: the default (60 s). */
  timeoutMs: number;
  /** What is left of the call's deadline, if it has one. */
  deadlineMs: number | undefined;
  /** Aborted when the caller goes away (or the server shuts down). */
  signal: AbortSignal;
}

export interface RequestReplyResult {
  reply: ReceivedMessage;
  requestSequenceNumber: bigint;
  requestMessageId: string;
}

/** What request–reply needs from the rest of the broker. */
export interface RequestReplyDeps extends ReplySessionDeps {
  store: Store;
  /** The broker's normal send path (routing, validation, quota, duplicate detection). */
  send(entityPath: string, messages: Message[]): Promise<SendResult[]>;
  /** Removes a request that got no reply, if it is still stored. */
  withdraw(entityPath: string, sequenceNumber: bigint): Promise<void>;
}

/**
 * The RequestReply RPC (semantics §5): sends the request with reply_to and
 * reply_to_session_id = the instance id, and waits for the reply whose correlation_id is the
 * request's message_id on that session of the reply queue. All calls of one instance on one
 * reply queue share one ReplySession (one session lock) in this broker process; it is
 * accepted by the first call and released when the last one ends.
 */
export class RequestReply {
  /** Open reply sessions by reply queue and instance id. */
  private readonly open = new Map<string, ReplySession>();

  constructor(private readonly deps: RequestReplyDeps) {}

  async call(call: RequestReplyCall): Promise<RequestReplyResult> {
    const replyEntity = await this.replyQueue(call.replyTo);
    const instanceId = call.instanceId || randomUUID();
    checkCharacterLimit(instanceId, MAX_ID_LENGTH, "instance_id", {
      entityPath: call.entityPath,
    });
    const timeoutMs = effectiveTimeout(call);
    const timedOut = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([call.signal, timedOut]);
    const request = call.request ?? create(MessageSchema);
    const messageId = request.messageId || randomUUID().replaceAll("-", "");
    // The request is checked as it will be sent before the reply session is accepted.
    const target = await resolveSendTarget(this.deps.store.entities, call.entityPath);
    validateSingleMessage(
      target,
      { ...request, messageId, replyTo: call.replyTo, replyToSessionId: instanceId },
      "request",
    );
    const { session, reply } = await this.expect(replyEntity, instanceId, messageId, call);
    let sent: SendResult | undefined;
    try {
      await untilAborted(session.ready, signal);
      const deadline = Date.now() + timeoutMs;
      [sent] = await this.deps.send(call.entityPath, [
        {
          ...request,
          messageId,
          replyTo: call.replyTo,
          replyToSessionId: instanceId,
          // The request is worthless once the caller stops waiting.
          timeToLive: durationFromMs(ttlWithin(request, deadline - Date.now())),
        },
      ]);
      if (!sent) throw new StoreUnavailableError(`sending the request to "${call.entityPath}"`);
      const received = await reply.until(signal);
      return {
        reply: received,
        requestSequenceNumber: sent.sequenceNumber,
        requestMessageId: sent.messageId,
      };
    } catch (error) {
      // A duplicate's sequence number is the first copy's, which is not this call's to remove.
      if (sent && !sent.duplicate) {
        await this.deps.withdraw(call.entityPath, sent.sequenceNumber).catch(() => undefined);
      }
      if (timedOut.aborted && !call.signal.aborted) {
        throw new RequestTimedOutError(call.entityPath, call.replyTo, timeoutMs);
      }
      throw error;
    } finally {
      // The last call of a session releases it before it answers: nothing stays locked.
      await session.release(messageId);
    }
  }

  /** Ends every call and releases every reply session (shutdown). */
  async close(): Promise<void> {
    const sessions = [...this.open.values()];
    this.open.clear();
    await Promise.allSettled(sessions.map((s) => s.stop(new Error("The broker is shutting down"))));
  }

  private async replyQueue(replyTo: string): Promise<ResolvedEntity> {
    if (replyTo === "") {
      throw new InvalidArgumentError(
        "reply_to",
        "reply_to is empty: name the session-enabled queue the reply comes back on.",
      );
    }
    const entity = await resolveEntity(this.deps.store.entities, replyTo, "reply_to");
    if (!entity.settings.requiresSession) throw new NotSessionEntityError(entity.address.path);
    return entity;
  }

  /**
   * Registers the call with its instance's reply session, opening the session if no call
   * holds it. A session that is closing is waited for, then opened anew. Registration
   * happens without an await in between, so a session never closes under a new call.
   */
  private async expect(
    entity: ResolvedEntity,
    instanceId: string,
    messageId: string,
    call: RequestReplyCall,
  ): Promise<{ session: ReplySession; reply: ReturnType<ReplySession["expect"]> }> {
    const key = `${entity.identity}\n${instanceId}`;
    for (;;) {
      const current = this.open.get(key);
      if (current?.accepting) {
        if (current.waits(messageId)) {
          throw new InvalidArgumentError(
            "request.message_id",
            `A RequestReply call of instance "${instanceId}" already waits for a reply to message id "${messageId}"; give each request its own message id.`,
            { entityPath: call.entityPath },
          );
        }
        return { session: current, reply: current.expect(messageId) };
      }
      if (current) {
        await current.closed;
        continue;
      }
      const session = new ReplySession(this.deps, entity, instanceId);
      this.open.set(key, session);
      void session.closed.then(() => {
        if (this.open.get(key) === session) this.open.delete(key);
      });
      return { session, reply: session.expect(messageId) };
    }
  }
}

/** The request's timeout, bounded by the call's deadline less a margin for the clean-up. */
function effectiveTimeout(call: RequestReplyCall): number {
  if (call.timeoutMs < 0) {
    throw new InvalidArgumentError("timeout", "timeout must not be negative.", {
      entityPath: call.entityPath,
    });
  }
  const own = call.timeoutMs || DEFAULT_REQUEST_TIMEOUT_MS;
  if (call.deadlineMs === undefined) return own;
  const margin = Math.min(DEADLINE_MARGIN_MS, call.deadlineMs / 2);
  // Whole milliseconds: AbortSignal.timeout throws on 141.5 (half of an odd deadline).
  return Math.max(1, Math.floor(Math.min(own, call.deadlineMs - margin)));
}

/** The smaller of the request's own time to live and what is left of the wait. */
function ttlWithin(request: Message, leftMs: number): number {
  const left = Math.max(1, Math.ceil(leftMs));
  const own = request.timeToLive ? durationMs(request.timeToLive) : 0;
  return own > 0 ? Math.min(own, left) : left;
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}
