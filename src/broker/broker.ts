import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Message, ReceivedMessage } from "../../gen/ts/sessionbus/v1/message_pb.js";
import type {
  ResubmitResult,
  SendResult,
} from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { AuthorizationRuleAdmin } from "../auth/authorization-rule-admin.js";
import { deadLetterStreamId } from "../store/entity-record.js";
import type { Store } from "../store/store.js";
import { type BrokerMetrics, type EntityCensus, NO_METRICS, useMetrics } from "./broker-metrics.js";
import { purgeDeadLettered } from "./dead-letters/dead-letter-purge.js";
import { resubmitDeadLettered } from "./dead-letters/dead-letter-resubmit.js";
import { resolveEntity, resolveSendTarget } from "./entities/entity-resolver.js";
import { entityRuntime } from "./entities/entity-streams.js";
import { QueueAdmin } from "./entities/queue-admin.js";
import { NotSessionEntityError } from "./errors.js";
import { MessageLocks } from "./locks/message-locks.js";
import { peekMessages } from "./receiving/peek.js";
import {
  checkOptions,
  type ReceiveEvent,
  type ReceiveOptions,
  receiveMessages,
} from "./receiving/receiver.js";
import {
  RequestReply,
  type RequestReplyCall,
  type RequestReplyResult,
} from "./request-reply/request-reply.js";
import { startScheduler } from "./scheduling/schedule-activation.js";
import {
  cancelScheduled,
  scheduleMessages,
  sendOrSchedule,
} from "./scheduling/scheduled-messages.js";
import { QuotaGuard } from "./sending/quota-guard.js";
import { listSessions, type SessionPage } from "./sessions/session-listing.js";
import { receiveSession } from "./sessions/session-receiver.js";
import { type AcceptedSession, type SessionRef, Sessions } from "./sessions/sessions.js";
import { Settlement, type SettleOptions } from "./settlement/settlement.js";
import { RuleAdmin } from "./topics/rule-admin.js";
import { SubscriptionAdmin } from "./topics/subscription-admin.js";
import { TopicAdmin } from "./topics/topic-admin.js";

/** The broker's operations, addressed by entity path; what the RPC handlers call. */
export interface Broker {
  queues: QueueAdmin;
  topics: TopicAdmin;
  subscriptions: SubscriptionAdmin;
  rules: RuleAdmin;
  /** Shared access authorization rules (who may call what; checked in src/auth). */
  authorizationRules: AuthorizationRuleAdmin;
  /** To a queue or a topic; messages with a scheduled_enqueue_time in the future are scheduled. */
  send(entityPath: string, messages: Message[]): Promise<SendResult[]>;
  /** Returns the scheduled messages' sequence numbers, in order. */
  scheduleMessages(
    entityPath: string,
    messages: Message[],
    scheduledEnqueueTime: Timestamp | undefined,
  ): Promise<bigint[]>;
  cancelScheduledMessages(entityPath: string, sequenceNumbers: bigint[]): Promise<void>;
  peek(
    entityPath: string,
    fromSequence: bigint,
    max: number,
    sessionId?: string,
  ): Promise<ReceivedMessage[]>;
  /** Session-less entities without `session`; session entities under a session lock. */
  receive(
    entityPath: string,
    options: ReceiveOptions,
    session?: SessionRef,
  ): AsyncGenerator<ReceiveEvent>;
  settle(
    entityPath: string,
    lockTokens: string[],
    options: SettleOptions,
    session?: SessionRef,
  ): Promise<void>;
  renewMessageLocks(entityPath: string, lockTokens: string[]): Promise<Timestamp[]>;
  receiveDeferred(
    entityPath: string,
    sequenceNumbers: bigint[],
    session?: SessionRef,
  ): Promise<ReceivedMessage[]>;
  acceptSession(
    entityPath: string,
    sessionId: string | undefined,
    maxWaitMs: number,
    signal: AbortSignal,
  ): Promise<AcceptedSession | undefined>;
  renewSessionLock(entityPath: string, session: SessionRef | undefined): Promise<number>;
  closeSession(entityPath: string, session: SessionRef | undefined): Promise<void>;
  getSessionState(
    entityPath: string,
    session: SessionRef | undefined,
  ): Promise<Uint8Array | undefined>;
  setSessionState(
    entityPath: string,
    session: SessionRef | undefined,
    state: Uint8Array | undefined,
  ): Promise<void>;
  listSessions(
    entityPath: string,
    pageSize: number,
    pageToken: string,
    stateChangedAfter: number | undefined,
  ): Promise<SessionPage>;
  /** The state of a session, read without its lock. */
  peekSessionState(entityPath: string, sessionId: string): Promise<Uint8Array | undefined>;
  /** Moves dead-lettered messages (by their dead-letter sequence numbers) back to `entityPath`. */
  resubmitDeadLettered(entityPath: string, sequenceNumbers: bigint[]): Promise<ResubmitResult[]>;
  /** Empties the dead-letter queue of `entityPath`; returns how many messages it held. */
  purgeDeadLettered(entityPath: string): Promise<bigint>;
  /** Sends a request and waits for its reply on the instance's reply session (semantics §5). */
  requestReply(call: RequestReplyCall): Promise<RequestReplyResult>;
  /**
   * Every entity this process knows (from the watched registry, no round trip), for the
   * metrics: queues, topics, subscriptions and dead-letter queues.
   */
  census(): Promise<EntityCensus[]>;
  /**
   * Shutdown: stops activating scheduled messages, closes the sessions this process holds
   * and forgets its message locks (JetStream redelivers those messages when their locks
   * expire).
   */
  close(): Promise<void>;
}

export interface BrokerOptions {
  /** Where the broker counts what it does. @default NO_METRICS */
  metrics?: BrokerMetrics;
}

export function createBroker(store: Store, options: BrokerOptions = {}): Broker {
  const metrics = options.metrics ?? NO_METRICS;
  useMetrics(store, metrics);
  const locks = new MessageLocks((lock) => metrics.messageLockLost(lock.entity, lock.entityPath));
  const sessions = new Sessions(store, locks);
  const settlement = new Settlement(store, locks, sessions);
  const quota = new QuotaGuard(store);
  const resolve = (path: string) => resolveEntity(store.entities, path);
  const scheduler = startScheduler(store);
  const subscriptions = new SubscriptionAdmin(store);
  const replies = new RequestReply({
    store,
    locks,
    sessions,
    settlement,
    send: (path, messages) => broker.send(path, messages),
    // A queue's request is deleted; copies a topic fanned out expire by their time to live.
    withdraw: async (path, sequence) => {
      const entity = await resolveSendTarget(store.entities, path);
      if (entity.record.kind === "topic") return;
      await store.messages.deleteMessage(entity.streamId, Number(sequence));
    },
  });
  const broker: Broker = {
    queues: new QueueAdmin(store),
    topics: new TopicAdmin(store),
    subscriptions,
    rules: new RuleAdmin(store, subscriptions),
    authorizationRules: new AuthorizationRuleAdmin(store),
    send: async (path, messages) => {
      const entity = await resolveSendTarget(store.entities, path);
      await quota.check(entity);
      const results = await sendOrSchedule(store, entity, messages, { indexed: sessions });
      let stored = 0;
      for (const result of results) if (!result.duplicate) stored++;
      metrics.sent(entity, stored);
      return results;
    },
    scheduleMessages: async (path, messages, at) => {
      const entity = await resolveSendTarget(store.entities, path);
      await quota.check(entity);
      const sequences = await scheduleMessages(store, entity, messages, at);
      metrics.sent(entity, sequences.length);
      return sequences;
    },
    cancelScheduledMessages: async (path, sequences) =>
      cancelScheduled(store, await resolveSendTarget(store.entities, path), sequences),
    peek: async (path, from, max, sessionId) =>
      peekMessages(store, await resolve(path), from, max, sessionId),
    async *receive(path, options, session) {
      const entity = await resolve(path);
      checkOptions(entity, options);
      if (entity.settings.requiresSession) {
        const handle = await sessions.handle(entity, session);
        yield* receiveSession(store, locks, sessions, entity, handle, options);
      } else {
        if (session) throw new NotSessionEntityError(entity.address.path);
        yield* receiveMessages(store, locks, entity, options);
      }
    },
    settle: async (path, tokens, options, session) =>
      settlement.settle(await resolve(path), tokens, options, session),
    renewMessageLocks: async (path, tokens) => settlement.renew(await resolve(path), tokens),
    receiveDeferred: async (path, sequences, session) =>
      settlement.receiveDeferred(await resolve(path), sequences, session),
    acceptSession: async (path, sessionId, maxWaitMs, signal) =>
      sessions.accept(await resolve(path), sessionId, maxWaitMs, signal),
    renewSessionLock: async (path, session) => sessions.renew(await resolve(path), session),
    closeSession: async (path, session) => sessions.close(await resolve(path), session),
    getSessionState: async (path, session) => sessions.getState(await resolve(path), session),
    setSessionState: async (path, session, state) => {
      const entity = await resolve(path);
      // A state counts towards max_size_bytes: a full entity takes none (clearing is fine).
      return sessions.setState(entity, session, state, () => quota.check(entity));
    },
    listSessions: async (path, pageSize, pageToken, after) =>
      listSessions(store, await resolve(path), pageSize, pageToken, after),
    peekSessionState: async (path, sessionId) => sessions.peekState(await resolve(path), sessionId),
    resubmitDeadLettered: (path, sequences) =>
      resubmitDeadLettered(store, path, sequences, sessions),
    purgeDeadLettered: (path) => purgeDeadLettered(store, path),
    requestReply: (call) => replies.call(call),
    census: async () => {
      const found: EntityCensus[] = [];
      for (const kind of ["queue", "topic", "subscription"] as const) {
        for (const key of store.entities.keys(kind)) {
          const record = (await store.entities.get(key))?.record;
          if (!record) continue;
          if (kind === "topic") {
            found.push({ identity: record.streamId, name: record.name });
            continue;
          }
          found.push({
            identity: record.streamId,
            name: record.name,
            figures: () => entityRuntime(store, record),
          });
          found.push({
            identity: deadLetterStreamId(record.streamId),
            name: `${record.name}/$deadletterqueue`,
          });
        }
      }
      return found;
    },
    close: async () => {
      await replies.close();
      await scheduler.stop();
      await sessions.closeAll();
      locks.clear();
    },
  };
  return broker;
}
