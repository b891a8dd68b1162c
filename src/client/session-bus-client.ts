/**
 * The sessionbus client: one HTTP/2 connection (gRPC protocol) to a broker, with senders,
 * receivers, session receivers, peek, session listing, administration of queues, topics,
 * subscriptions and rules, and request–reply. Given several addresses of brokers sharing
 * one store, it uses one at a time and moves to the next when the connection to its broker
 * fails (src/client/failover/).
 */
import { randomUUID } from "node:crypto";
import { createClient, type Transport } from "@connectrpc/connect";
import {
  createGrpcTransport,
  type GrpcTransportOptions,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { AdminService } from "../../gen/ts/sessionbus/v1/admin_service_pb.js";
import { MessagingService } from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { type ConnectionString, parseConnectionString } from "./connection-string.js";
import { CLIENT_DEFAULTS, withDefaults } from "./defaults.js";
import {
  type BrokerLink,
  type FailoverEvent,
  FailoverTransport,
} from "./failover/failover-transport.js";
import type { MessageToSend, ReceivedMessage } from "./message.js";
import { type PeekOptions, peek } from "./peek.js";
import {
  createQueue,
  deleteQueue,
  getQueue,
  type ListQueuesOptions,
  listQueues,
  type QueueDescription,
  type QueueOptions,
  updateQueue,
} from "./queue-admin.js";
import { createReceiver, type Receiver, type ReceiverOptions } from "./receiver.js";
import { Requester, type RequestReplyOptions } from "./request-reply.js";
import {
  createResponder,
  type Responder,
  type ResponderHandler,
  type ResponderOptions,
} from "./responder.js";
import type { CallOptions, Rpc } from "./rpc.js";
import {
  createRule,
  deleteRule,
  listRules,
  type RuleDescription,
  type RuleOptions,
} from "./rule-admin.js";
import {
  createTokenSource,
  type SharedAccessSignatureSource,
  withAuthorization,
} from "./sas-authorization.js";
import { createSender, type Sender } from "./sender.js";
import { type ListSessionsOptions, listSessions, type SessionInfo } from "./session-listing.js";
import {
  type AcceptNextSessionOptions,
  acceptNextSession,
  acceptSession,
  type SessionReceiver,
  type SessionReceiverOptions,
} from "./session-receiver.js";
import { StreamSettler } from "./stream-settler.js";
import {
  type CreateSubscriptionOptions,
  createSubscription,
  deleteSubscription,
  getSubscription,
  type ListSubscriptionsOptions,
  listSubscriptions,
  type SubscriptionDescription,
  type SubscriptionOptions,
  updateSubscription,
} from "./subscription-admin.js";
import {
  createTopic,
  deleteTopic,
  getTopic,
  type ListTopicsOptions,
  listTopics,
  type TopicDescription,
  type TopicOptions,
  updateTopic,
} from "./topic-admin.js";

export interface SessionBusClientOptions
  extends Omit<GrpcTransportOptions, "baseUrl" | "defaultTimeoutMs" | "sessionManager"> {
  /**
   * A connection string, `Endpoint=sb://host:port/;SharedAccessKeyName=<rule>;SharedAccessKey=<key>`
   * (plus `;UseDevelopmentEmulator=true` for a broker without TLS): the broker's address,
   * unless `url` is given, and the key every call's token is minted from. Tokens are valid
   * for an hour and replaced five minutes before they expire. A string with
   * `SharedAccessSignature=<token>` instead of the key pair sends that token. Takes the
   * text or what parseConnectionString made of it.
   * @default none: calls carry no token
   */
  connectionString?: string | ConnectionString | undefined;
  /**
   * Instead of a connection string: a token minted elsewhere, or a function returning one
   * (called before the first call and whenever the last token's `se` is less than five
   * minutes away). Give `url` (or `transport`) with it.
   * @default none
   */
  sharedAccessSignature?: SharedAccessSignatureSource | undefined;
  /**
   * The broker's gRPC port, e.g. "http://127.0.0.1:50051" (cleartext HTTP/2) or
   * "https://broker.example:50051" (TLS). A list gives several brokers sharing one store
   * (one NATS JetStream): calls go to the first until the connection to it fails, then to
   * the next, and so on around the list; calls that are safe to repeat are repeated there,
   * receivers reopen their streams there, and sessions held through the failed broker are
   * lost to their receivers (SessionLockLostError) until their locks expire. See
   * docs/operations.md, "Broker failover".
   * @default derived from `connectionString` (every endpoint it lists); one of the two is needed unless `transport` is given
   */
  url?: string | readonly string[] | undefined;
  /**
   * With several addresses: called when the client moves to the next broker because the
   * connection to its broker failed (refused, reset, closed under a call).
   * @default none
   */
  onFailover?: ((event: FailoverEvent) => void) | undefined;
  /**
   * A transport of your own instead of gRPC to `url`: e.g. a Connect or gRPC-Web transport
   * to the broker's HTTP port (`SESSIONBUS_HTTP_PORT`, default 50052), where HTTP/2 to the
   * gRPC port is not available. The client adds the token of `connectionString` or
   * `sharedAccessSignature` to every call it makes through it. Closing the client does not
   * close it.
   * @default gRPC over HTTP/2 to `url`
   */
  transport?: Transport | undefined;
  /** Deadline of each unary call (accept-next: on top of its wait). @default 30_000 */
  callTimeoutMs?: number | undefined;
  /**
   * This client instance's id: the session its request–reply replies come back on.
   * @default a random UUID
   */
  instanceId?: string | undefined;
}

export interface SessionBusClient {
  /**
   * The broker's gRPC URL: `url`, or the one the connection string names ("" when neither
   * was given); the first of them when there are several.
   */
  readonly url: string;
  /** Every broker address, in the order given (one for a single broker). */
  readonly urls: readonly string[];
  /** The broker calls go to now: `url`, or with several the one the client has moved to. */
  readonly activeUrl: string;
  /** The session id replies to this client's requestReply calls carry. */
  readonly instanceId: string;

  /** Sends to a queue or a topic. */
  sender(entityPath: string): Sender;
  /**
   * Receives from an entity without sessions: a queue, a subscription
   * (`subscriptionPath(topic, name)`), or any dead-letter queue.
   */
  receiver(entityPath: string, options?: ReceiverOptions): Receiver;
  /** Locks the named session (also an empty or unknown one). */
  acceptSession(
    entityPath: string,
    sessionId: string,
    options?: SessionReceiverOptions,
  ): Promise<SessionReceiver>;
  /** Locks the next session with a receivable message; undefined if none within maxWaitMs. */
  acceptNextSession(
    entityPath: string,
    options?: AcceptNextSessionOptions,
  ): Promise<SessionReceiver | undefined>;
  /** Reads messages without locking them. */
  peek(entityPath: string, options?: PeekOptions): Promise<ReceivedMessage[]>;
  /** Sessions with a receivable message or a state, every page. */
  listSessions(entityPath: string, options?: ListSessionsOptions): AsyncIterable<SessionInfo>;

  createQueue(name: string, options?: QueueOptions, call?: CallOptions): Promise<QueueDescription>;
  getQueue(name: string, call?: CallOptions): Promise<QueueDescription>;
  /** Every queue, every page. */
  listQueues(options?: ListQueuesOptions): AsyncIterable<QueueDescription>;
  /** Changes the given properties (requiresSession cannot change). */
  updateQueue(name: string, options: QueueOptions, call?: CallOptions): Promise<QueueDescription>;
  /** Removes the queue, its messages, sessions and dead-letter queue. */
  deleteQueue(name: string, call?: CallOptions): Promise<void>;

  createTopic(name: string, options?: TopicOptions, call?: CallOptions): Promise<TopicDescription>;
  getTopic(name: string, call?: CallOptions): Promise<TopicDescription>;
  /** Every topic, every page. */
  listTopics(options?: ListTopicsOptions): AsyncIterable<TopicDescription>;
  updateTopic(name: string, options: TopicOptions, call?: CallOptions): Promise<TopicDescription>;
  /** Removes the topic and all its subscriptions with their messages and sessions. */
  deleteTopic(name: string, call?: CallOptions): Promise<void>;

  /**
   * Creates a subscription that receives the topic's messages sent from then on, through
   * `options.rule` (default: "$Default", matching every message).
   */
  createSubscription(
    topicName: string,
    name: string,
    options?: CreateSubscriptionOptions,
    call?: CallOptions,
  ): Promise<SubscriptionDescription>;
  getSubscription(
    topicName: string,
    name: string,
    call?: CallOptions,
  ): Promise<SubscriptionDescription>;
  /** Every subscription of the topic, every page. */
  listSubscriptions(
    topicName: string,
    options?: ListSubscriptionsOptions,
  ): AsyncIterable<SubscriptionDescription>;
  /** Changes the given properties (requiresSession cannot change). */
  updateSubscription(
    topicName: string,
    name: string,
    options: SubscriptionOptions,
    call?: CallOptions,
  ): Promise<SubscriptionDescription>;
  deleteSubscription(topicName: string, name: string, call?: CallOptions): Promise<void>;

  /** Adds a rule to a subscription; it applies to the messages sent from then on. */
  createRule(
    topicName: string,
    subscriptionName: string,
    rule: RuleOptions,
    call?: CallOptions,
  ): Promise<RuleDescription>;
  /** The subscription's rules in order of creation. */
  listRules(
    topicName: string,
    subscriptionName: string,
    call?: CallOptions,
  ): Promise<RuleDescription[]>;
  deleteRule(
    topicName: string,
    subscriptionName: string,
    ruleName: string,
    call?: CallOptions,
  ): Promise<void>;

  /**
   * Sends `request` to `requestQueue` and resolves with its reply: the message on
   * `options.replyQueue` (session-enabled) in session `instanceId` whose correlation id is
   * the request's message id (generated when unset). Concurrent calls share one session.
   */
  requestReply(
    requestQueue: string,
    request: MessageToSend,
    options: RequestReplyOptions,
  ): Promise<ReceivedMessage>;
  /** Answers the requests arriving on `requestQueue` with `handler`; starts at once. */
  createResponder(
    requestQueue: string,
    handler: ResponderHandler,
    options?: ResponderOptions,
  ): Responder;

  /** Closes responders, ends waiting requestReply calls, then the connection. */
  close(): Promise<void>;
}

export function createSessionBusClient(options: SessionBusClientOptions): SessionBusClient {
  const {
    url: givenUrl,
    connectionString: givenConnectionString,
    sharedAccessSignature,
    callTimeoutMs: _timeout,
    instanceId: _id,
    transport: ownTransport,
    onFailover,
    ...transportOptions
  } = options;
  const { callTimeoutMs } = withDefaults(CLIENT_DEFAULTS, options);
  const instanceId = options.instanceId ?? randomUUID();
  const connectionString: ConnectionString | undefined =
    typeof givenConnectionString === "string"
      ? parseConnectionString(givenConnectionString)
      : givenConnectionString;
  const token = createTokenSource({ connectionString, sharedAccessSignature });
  const urls: readonly string[] =
    givenUrl === undefined
      ? (connectionString?.urls ?? [])
      : typeof givenUrl === "string"
        ? [givenUrl]
        : [...givenUrl];
  if (urls.some((each) => typeof each !== "string" || each === "")) {
    throw new Error("createSessionBusClient: every url must be a non-empty string.");
  }
  const url = urls[0] ?? "";
  if (url === "" && ownTransport === undefined) {
    throw new Error(
      "createSessionBusClient needs the broker's address: a url (e.g. http://127.0.0.1:50051), a connectionString or a transport.",
    );
  }
  // Only the default transport's connections are the client's to close.
  const sessionManagers: Http2SessionManager[] = [];
  const grpcTo = (brokerUrl: string): Transport => {
    const sessionManager = new Http2SessionManager(
      brokerUrl,
      {
        pingIntervalMs: transportOptions.pingIntervalMs,
        pingIdleConnection: transportOptions.pingIdleConnection,
        pingTimeoutMs: transportOptions.pingTimeoutMs,
        idleConnectionTimeoutMs: transportOptions.idleConnectionTimeoutMs,
      },
      transportOptions.nodeOptions,
    );
    sessionManagers.push(sessionManager);
    return createGrpcTransport({ ...transportOptions, baseUrl: brokerUrl, sessionManager });
  };
  const failover =
    ownTransport === undefined && urls.length > 1
      ? new FailoverTransport(
          urls.map((each): BrokerLink => ({ url: each, transport: grpcTo(each) })),
          onFailover,
        )
      : undefined;
  const baseTransport = ownTransport ?? failover ?? grpcTo(url);
  const transport = token === undefined ? baseTransport : withAuthorization(baseTransport, token);
  const messaging = createClient(MessagingService, transport);
  const rpc: Rpc = {
    messaging,
    admin: createClient(AdminService, transport),
    settler: new StreamSettler(messaging, callTimeoutMs),
    callTimeoutMs,
    brokers: failover,
  };
  const requester = new Requester(rpc, instanceId);
  const responders = new Set<Responder>();

  return {
    url,
    urls,
    get activeUrl() {
      return failover?.activeUrl ?? url;
    },
    instanceId,
    sender: (entityPath) => createSender(rpc, entityPath),
    receiver: (entityPath, receiverOptions) => createReceiver(rpc, entityPath, receiverOptions),
    acceptSession: (entityPath, sessionId, sessionOptions) =>
      acceptSession(rpc, entityPath, sessionId, sessionOptions),
    acceptNextSession: (entityPath, acceptOptions) =>
      acceptNextSession(rpc, entityPath, acceptOptions),
    peek: (entityPath, peekOptions) => peek(rpc, entityPath, peekOptions),
    listSessions: (entityPath, listOptions) => listSessions(rpc, entityPath, listOptions),
    createQueue: (name, queueOptions, call) => createQueue(rpc, name, queueOptions, call),
    getQueue: (name, call) => getQueue(rpc, name, call),
    listQueues: (listOptions) => listQueues(rpc, listOptions),
    updateQueue: (name, queueOptions, call) => updateQueue(rpc, name, queueOptions, call),
    deleteQueue: (name, call) => deleteQueue(rpc, name, call),
    createTopic: (name, topicOptions, call) => createTopic(rpc, name, topicOptions, call),
    getTopic: (name, call) => getTopic(rpc, name, call),
    listTopics: (listOptions) => listTopics(rpc, listOptions),
    updateTopic: (name, topicOptions, call) => updateTopic(rpc, name, topicOptions, call),
    deleteTopic: (name, call) => deleteTopic(rpc, name, call),
    createSubscription: (topicName, name, subscriptionOptions, call) =>
      createSubscription(rpc, topicName, name, subscriptionOptions, call),
    getSubscription: (topicName, name, call) => getSubscription(rpc, topicName, name, call),
    listSubscriptions: (topicName, listOptions) => listSubscriptions(rpc, topicName, listOptions),
    updateSubscription: (topicName, name, subscriptionOptions, call) =>
      updateSubscription(rpc, topicName, name, subscriptionOptions, call),
    deleteSubscription: (topicName, name, call) => deleteSubscription(rpc, topicName, name, call),
    createRule: (topicName, subscriptionName, rule, call) =>
      createRule(rpc, topicName, subscriptionName, rule, call),
    listRules: (topicName, subscriptionName, call) =>
      listRules(rpc, topicName, subscriptionName, call),
    deleteRule: (topicName, subscriptionName, ruleName, call) =>
      deleteRule(rpc, topicName, subscriptionName, ruleName, call),
    requestReply: (requestQueue, request, replyOptions) =>
      requester.request(requestQueue, request, replyOptions),
    createResponder(requestQueue, handler, responderOptions) {
      const responder = createResponder(rpc, requestQueue, handler, responderOptions);
      responders.add(responder);
      return {
        requestQueue,
        close: async () => {
          responders.delete(responder);
          await responder.close();
        },
      };
    },
    async close() {
      await Promise.allSettled([...responders].map((r) => r.close()));
      responders.clear();
      await requester.close();
      rpc.settler.close();
      for (const sessionManager of sessionManagers) sessionManager.abort();
    },
  };
}
