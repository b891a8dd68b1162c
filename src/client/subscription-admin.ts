/**
 * Subscription administration: create (with an optional first rule), get, list, update,
 * delete. A subscription is a queue of its own at `<topic>/subscriptions/<name>`: receive,
 * peek, sessions and its dead-letter queue work on that path as on a queue's.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  Subscription,
  SubscriptionPropertiesSchema,
} from "../../gen/ts/sessionbus/v1/topic_pb.js";
import {
  duration,
  type EntityRuntimeInfo,
  fromRuntimeInfo,
  int64,
  ms,
} from "./admin-conversions.js";
import { pagedList } from "./paged-list.js";
import { type CallOptions, invoke, type Rpc } from "./rpc.js";
import { type RuleFilter, toProtoRule } from "./rule-admin.js";

/** The entity path to receive from: `<topic>/subscriptions/<name>`. */
export function subscriptionPath(topicName: string, subscriptionName: string): string {
  return `${topicName}/subscriptions/${subscriptionName}`;
}

/** Settings of a subscription; the defaults are the broker's. */
export interface SubscriptionOptions {
  /**
   * Every message must carry a session id; a matching message without one is dead-lettered
   * ("Session id is null."). Fixed at creation. @default false
   */
  requiresSession?: boolean | undefined;
  /** How long a message or session lock lasts; 5 s to 5 min. @default 60_000 */
  lockDurationMs?: number | undefined;
  /** Deliveries before a message moves to the dead-letter queue; at least 1. @default 10 */
  maxDeliveryCount?: number | undefined;
  /** Caps the time to live of the subscription's messages. @default none */
  defaultMessageTtlMs?: number | undefined;
  /** Expired messages go to the dead-letter queue instead of being dropped. @default false */
  deadLetteringOnMessageExpiration?: boolean | undefined;
  /** Largest session state; at most 100 MiB. @default 262_144 */
  maxSessionStateSizeBytes?: number | undefined;
}

export interface CreateSubscriptionOptions extends SubscriptionOptions {
  /**
   * The first rule. Without a name it is called "$Default".
   * @default "$Default" matching every message
   */
  rule?: { name?: string | undefined; filter: RuleFilter } | undefined;
}

/** A subscription's settings as the broker reports them (every field set). */
export interface SubscriptionProperties {
  requiresSession: boolean;
  lockDurationMs: number;
  maxDeliveryCount: number;
  /** Undefined: messages live until received. */
  defaultMessageTtlMs: number | undefined;
  deadLetteringOnMessageExpiration: boolean;
  maxSessionStateSizeBytes: number;
}

export interface SubscriptionDescription {
  topicName: string;
  /** The name as first written (names match case-insensitively). */
  name: string;
  /** `<topic>/subscriptions/<name>`: the path to receive, peek and list sessions on. */
  path: string;
  properties: SubscriptionProperties;
  runtimeInfo: EntityRuntimeInfo;
}

export interface ListSubscriptionsOptions extends CallOptions {
  /** Subscriptions fetched per call; at most 1000. @default 100 (the broker's) */
  pageSize?: number | undefined;
}

const DEFAULT_RULE_NAME = "$Default";

/** Creates a subscription; it receives the topic's messages sent from then on. */
export async function createSubscription(
  rpc: Rpc,
  topicName: string,
  name: string,
  options?: CreateSubscriptionOptions,
  call?: CallOptions,
): Promise<SubscriptionDescription> {
  const rule = options?.rule;
  const response = await invoke(rpc, call, (c) =>
    rpc.admin.createSubscription(
      {
        topicName,
        name,
        properties: toProperties(options),
        rule: rule && toProtoRule({ name: rule.name ?? DEFAULT_RULE_NAME, filter: rule.filter }),
      },
      c,
    ),
  );
  return fromSubscription(response.subscription, topicName, name);
}

export async function getSubscription(
  rpc: Rpc,
  topicName: string,
  name: string,
  call?: CallOptions,
): Promise<SubscriptionDescription> {
  const response = await invoke(rpc, call, (c) =>
    rpc.admin.getSubscription({ topicName, name }, c),
  );
  return fromSubscription(response.subscription, topicName, name);
}

export async function updateSubscription(
  rpc: Rpc,
  topicName: string,
  name: string,
  options: SubscriptionOptions,
  call?: CallOptions,
): Promise<SubscriptionDescription> {
  const response = await invoke(rpc, call, (c) =>
    rpc.admin.updateSubscription({ topicName, name, properties: toProperties(options) }, c),
  );
  return fromSubscription(response.subscription, topicName, name);
}

/** Removes the subscription with its messages, sessions and dead-letter queue. */
export async function deleteSubscription(
  rpc: Rpc,
  topicName: string,
  name: string,
  call?: CallOptions,
): Promise<void> {
  await invoke(rpc, call, (c) => rpc.admin.deleteSubscription({ topicName, name }, c));
}

/** Every subscription of the topic, in order of their lower-cased names, page by page. */
export async function* listSubscriptions(
  rpc: Rpc,
  topicName: string,
  options?: ListSubscriptionsOptions,
): AsyncGenerator<SubscriptionDescription> {
  const items = pagedList(
    (pageToken) =>
      invoke(rpc, options, (c) =>
        rpc.admin.listSubscriptions({ topicName, pageSize: options?.pageSize ?? 0, pageToken }, c),
      ),
    (page) => page.subscriptions,
  );
  for await (const each of items) yield fromSubscription(each, topicName, each.name);
}

function toProperties(
  o: SubscriptionOptions | undefined,
): MessageInitShape<typeof SubscriptionPropertiesSchema> | undefined {
  if (!o) return undefined;
  return {
    requiresSession: o.requiresSession,
    lockDuration: duration(o.lockDurationMs),
    maxDeliveryCount: o.maxDeliveryCount,
    defaultMessageTtl: duration(o.defaultMessageTtlMs),
    deadLetteringOnMessageExpiration: o.deadLetteringOnMessageExpiration,
    maxSessionStateSizeBytes: int64(o.maxSessionStateSizeBytes),
  };
}

function fromSubscription(
  subscription: Subscription | undefined,
  topicName: string,
  name: string,
): SubscriptionDescription {
  if (!subscription) {
    throw new Error(
      `The broker's answer about subscription "${subscriptionPath(topicName, name)}" carries no subscription`,
    );
  }
  const p = subscription.properties;
  const topic = subscription.topicName || topicName;
  return {
    topicName: topic,
    name: subscription.name,
    path: subscriptionPath(topic, subscription.name),
    properties: {
      requiresSession: p?.requiresSession ?? false,
      lockDurationMs: ms(p?.lockDuration) ?? 0,
      maxDeliveryCount: p?.maxDeliveryCount ?? 0,
      defaultMessageTtlMs: ms(p?.defaultMessageTtl),
      deadLetteringOnMessageExpiration: p?.deadLetteringOnMessageExpiration ?? false,
      maxSessionStateSizeBytes: Number(p?.maxSessionStateSizeBytes ?? 0),
    },
    runtimeInfo: fromRuntimeInfo(subscription.runtimeInfo),
  };
}
