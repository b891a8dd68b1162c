/**
 * Topic administration: create, get, list, update, delete. A topic is sent to and never
 * received from; its subscriptions (subscription-admin.ts) hold the copies. Durations are
 * milliseconds and sizes bytes; a property left undefined takes the broker's default on
 * create and keeps its value on update.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Topic, TopicPropertiesSchema } from "../../gen/ts/sessionbus/v1/topic_pb.js";
import {
  duration,
  type EntityRuntimeInfo,
  fromRuntimeInfo,
  int64,
  ms,
} from "./admin-conversions.js";
import { pagedList } from "./paged-list.js";
import { type CallOptions, invoke, type Rpc } from "./rpc.js";

/** Settings of a topic; the defaults are the broker's. */
export interface TopicOptions {
  /** Time to live of messages that set none (and cap of those that do). @default none */
  defaultMessageTtlMs?: number | undefined;
  /** Largest message accepted; 1 KiB to 1,000,000 bytes. @default 262_144 */
  maxMessageSizeBytes?: number | undefined;
  /** Drop messages whose message id was seen within the window, before any copy is made. @default false */
  requiresDuplicateDetection?: boolean | undefined;
  /** 20 s to 7 days. @default 600_000 */
  duplicateDetectionWindowMs?: number | undefined;
  /** Storage quota of each subscription of the topic; at least 1 MiB. @default 1_073_741_824 */
  maxSizeBytes?: number | undefined;
}

/** A topic's settings as the broker reports them (every field set). */
export interface TopicProperties {
  /** Undefined: messages live until received. */
  defaultMessageTtlMs: number | undefined;
  maxMessageSizeBytes: number;
  requiresDuplicateDetection: boolean;
  duplicateDetectionWindowMs: number;
  maxSizeBytes: number;
}

export interface TopicDescription {
  /** The name as first written (names match case-insensitively). */
  name: string;
  properties: TopicProperties;
  /** The sums of its subscriptions' figures (messages are stored in the subscriptions). */
  runtimeInfo: EntityRuntimeInfo;
  subscriptionCount: number;
}

export interface ListTopicsOptions extends CallOptions {
  /** Topics fetched per call; at most 1000. @default 100 (the broker's) */
  pageSize?: number | undefined;
}

export async function createTopic(
  rpc: Rpc,
  name: string,
  options?: TopicOptions,
  call?: CallOptions,
): Promise<TopicDescription> {
  const response = await invoke(rpc, call, (c) =>
    rpc.admin.createTopic({ name, properties: toProperties(options) }, c),
  );
  return fromTopic(response.topic, name);
}

export async function getTopic(
  rpc: Rpc,
  name: string,
  call?: CallOptions,
): Promise<TopicDescription> {
  const response = await invoke(rpc, call, (c) => rpc.admin.getTopic({ name }, c));
  return fromTopic(response.topic, name);
}

export async function updateTopic(
  rpc: Rpc,
  name: string,
  options: TopicOptions,
  call?: CallOptions,
): Promise<TopicDescription> {
  const response = await invoke(rpc, call, (c) =>
    rpc.admin.updateTopic({ name, properties: toProperties(options) }, c),
  );
  return fromTopic(response.topic, name);
}

/** Removes the topic and all its subscriptions with their messages and sessions. */
export async function deleteTopic(rpc: Rpc, name: string, call?: CallOptions): Promise<void> {
  await invoke(rpc, call, (c) => rpc.admin.deleteTopic({ name }, c));
}

/** Every topic, in order of their lower-cased names, fetched page by page as iterated. */
export async function* listTopics(
  rpc: Rpc,
  options?: ListTopicsOptions,
): AsyncGenerator<TopicDescription> {
  const items = pagedList(
    (pageToken) =>
      invoke(rpc, options, (c) =>
        rpc.admin.listTopics({ pageSize: options?.pageSize ?? 0, pageToken }, c),
      ),
    (page) => page.topics,
  );
  for await (const topic of items) yield fromTopic(topic, topic.name);
}

function toProperties(
  o: TopicOptions | undefined,
): MessageInitShape<typeof TopicPropertiesSchema> | undefined {
  if (!o) return undefined;
  return {
    defaultMessageTtl: duration(o.defaultMessageTtlMs),
    maxMessageSizeBytes: int64(o.maxMessageSizeBytes),
    requiresDuplicateDetection: o.requiresDuplicateDetection,
    duplicateDetectionWindow: duration(o.duplicateDetectionWindowMs),
    maxSizeBytes: int64(o.maxSizeBytes),
  };
}

function fromTopic(topic: Topic | undefined, name: string): TopicDescription {
  if (!topic) throw new Error(`The broker's answer about topic "${name}" carries no topic`);
  const p = topic.properties;
  return {
    name: topic.name,
    properties: {
      defaultMessageTtlMs: ms(p?.defaultMessageTtl),
      maxMessageSizeBytes: Number(p?.maxMessageSizeBytes ?? 0),
      requiresDuplicateDetection: p?.requiresDuplicateDetection ?? false,
      duplicateDetectionWindowMs: ms(p?.duplicateDetectionWindow) ?? 0,
      maxSizeBytes: Number(p?.maxSizeBytes ?? 0),
    },
    runtimeInfo: fromRuntimeInfo(topic.runtimeInfo),
    subscriptionCount: topic.subscriptionCount,
  };
}
