import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import {
  MessagingService,
  ReceiveMode,
  type SessionLockRef,
  type SettleRequest,
  type SettleStreamRequest,
} from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { authorizeFrame } from "../auth/frame-authorization.js";
import type { Broker } from "../broker/broker.js";
import { durationArgumentMs, MAX_WAIT_MS } from "../broker/limits/duration-argument.js";
import type { SessionRef } from "../broker/sessions/sessions.js";
import { sendFrameKeys, settleFrameKeys } from "./frame-keys.js";
import { answerInOrder, frameError } from "./frames-in-order.js";
import type { RouteRegistry } from "./route-table.js";
import { withErrorMapping } from "./with-error-mapping.js";

export function registerMessagingService(router: RouteRegistry, broker: Broker): void {
  // Settle and a SettleStream frame carry the same fields.
  const settle = (req: SettleRequest | SettleStreamRequest) =>
    broker.settle(
      req.entityPath,
      req.lockTokens,
      {
        disposition: req.disposition,
        deadLetterReason: req.deadLetterReason,
        deadLetterDescription: req.deadLetterDescription,
      },
      sessionRef(req.session),
    );
  router.service(
    MessagingService,
    withErrorMapping(MessagingService, {
      async send(req) {
        return { results: await broker.send(req.entityPath, req.messages) };
      },
      async scheduleMessages(req) {
        return {
          sequenceNumbers: await broker.scheduleMessages(
            req.entityPath,
            req.messages,
            req.scheduledEnqueueTime,
          ),
        };
      },
      async cancelScheduledMessages(req) {
        await broker.cancelScheduledMessages(req.entityPath, req.sequenceNumbers);
        return {};
      },
      async peek(req) {
        return {
          messages: await broker.peek(
            req.entityPath,
            req.fromSequenceNumber,
            req.maxMessages,
            req.sessionId,
          ),
        };
      },
      async *receiveStream(req, ctx) {
        // The stream ends when the client cancels or the server shuts down.
        const { signal } = ctx;
        const messages = broker.receive(
          req.entityPath,
          {
            receiveAndDelete: req.receiveMode === ReceiveMode.RECEIVE_AND_DELETE,
            prefetch: req.prefetch,
            maxMessages: req.maxMessages,
            maxWaitMs: durationArgumentMs(req.maxWait, "max_wait", MAX_WAIT_MS, req.entityPath),
            signal,
          },
          sessionRef(req.session),
        );
        for await (const event of messages) {
          yield event.kind === "message"
            ? { event: { case: "message", value: event.message } }
            : { event: { case: "recalled", value: { lockTokens: event.lockTokens } } };
        }
      },
      async settle(req) {
        await settle(req);
        return {};
      },
      sendStream(requests, ctx) {
        // Messages of one session (or without one) keep the order of their frames.
        return answerInOrder(requests, sendFrameKeys, async (req) => {
          try {
            authorizeFrame(ctx, req.entityPath);
            return { results: await broker.send(req.entityPath, req.messages) };
          } catch (error) {
            return { error: frameError(error) };
          }
        });
      },
      settleStream(requests, ctx) {
        return answerInOrder(requests, settleFrameKeys, async (req) => {
          try {
            authorizeFrame(ctx, req.entityPath);
            await settle(req);
            return {};
          } catch (error) {
            return { error: frameError(error) };
          }
        });
      },
      async renewMessageLock(req) {
        return { lockedUntil: await broker.renewMessageLocks(req.entityPath, req.lockTokens) };
      },
      async receiveDeferred(req) {
        return {
          messages: await broker.receiveDeferred(
            req.entityPath,
            req.sequenceNumbers,
            sessionRef(req.session),
          ),
        };
      },
      async acceptSession(req, ctx) {
        const { signal } = ctx;
        const waitMs = durationArgumentMs(req.maxWait, "max_wait", MAX_WAIT_MS, req.entityPath);
        const accepted = await broker.acceptSession(req.entityPath, req.sessionId, waitMs, signal);
        if (!accepted) return {};
        return {
          session: {
            sessionId: accepted.sessionId,
            lockToken: accepted.lockToken,
            lockedUntil: timestampFromMs(accepted.lockedUntil),
          },
        };
      },
      async renewSessionLock(req) {
        const until = await broker.renewSessionLock(req.entityPath, sessionRef(req.session));
        return { lockedUntil: timestampFromMs(until) };
      },
      async closeSession(req) {
        await broker.closeSession(req.entityPath, sessionRef(req.session));
        return {};
      },
      async getSessionState(req) {
        return { state: await broker.getSessionState(req.entityPath, sessionRef(req.session)) };
      },
      async setSessionState(req) {
        await broker.setSessionState(req.entityPath, sessionRef(req.session), req.state);
        return {};
      },
      async listSessions(req) {
        const page = await broker.listSessions(
          req.entityPath,
          req.pageSize,
          req.pageToken,
          req.stateChangedAfter ? timestampMs(req.stateChangedAfter) : undefined,
        );
        return {
          nextPageToken: page.nextPageToken,
          sessions: page.sessions.map((s) => ({
            sessionId: s.sessionId,
            messageCount: BigInt(s.messageCount),
            locked: s.lockedUntil !== undefined,
            lockedUntil: s.lockedUntil === undefined ? undefined : timestampFromMs(s.lockedUntil),
            stateSizeBytes: BigInt(s.stateSize),
            lastActivity: s.lastActivity ? timestampFromMs(s.lastActivity) : undefined,
          })),
        };
      },
      async peekSessionState(req) {
        return { state: await broker.peekSessionState(req.entityPath, req.sessionId) };
      },
      async resubmitDeadLetteredMessages(req) {
        return {
          results: await broker.resubmitDeadLettered(req.entityPath, req.sequenceNumbers),
        };
      },
      async purgeDeadLetteredMessages(req) {
        return { purgedCount: await broker.purgeDeadLettered(req.entityPath) };
      },
      async requestReply(req, ctx) {
        const result = await broker.requestReply({
          entityPath: req.entityPath,
          request: req.request,
          replyTo: req.replyTo,
          instanceId: req.instanceId,
          timeoutMs: durationArgumentMs(req.timeout, "timeout", MAX_WAIT_MS, req.entityPath),
          // The broker ends the call before this deadline, so the client sees its reason.
          deadlineMs: ctx.timeoutMs(),
          signal: ctx.signal,
        });
        return {
          reply: result.reply,
          requestSequenceNumber: result.requestSequenceNumber,
          requestMessageId: result.requestMessageId,
        };
      },
    }),
  );
}

/** A request's session lock reference; unset stays unset (the broker decides if it is needed). */
function sessionRef(ref: SessionLockRef | undefined): SessionRef | undefined {
  return ref ? { sessionId: ref.sessionId, lockToken: ref.lockToken } : undefined;
}
