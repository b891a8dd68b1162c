/**
 * Queue administration: create, get, list, update, delete. Durations are milliseconds and
 * sizes bytes; a property left undefined takes the broker's default on create and keeps its
 * value on update.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Queue, QueuePropertiesSchema } from "../../gen/ts/sessionbus/v1/queue_pb.js";
import {
  duration,
  type EntityRuntimeInfo,
  fromRuntimeInfo,
  int64,
  ms,
} from "./admin-conversions.js";
import { pagedList } from "./paged-list.js";
import { type CallOptions, invoke, type Rpc } from "./rpc.js";

/** Settings of a queue; the defaults are the broker's. */
export interface QueueOptions {
  /** Every message must carry a session id. Fixed at creation. @default false */
  requiresSession?: boolean | undefined;
  /** How long a message or session lock lasts; 5 s to 5 min. @default 60_000 */
  lockDurationMs?: number | undefined;
  /** Deliveries before a message moves to the dead-letter queue; at least 1. @default 10 */
  maxDeliveryCount?: number | undefined;
  /** Time to live of messages that set none (and cap of those that do). @default none */
  defaultMessageTtlMs?: number | undefined;
  /** Expired messages go to the dead-letter queue instead of being dropped. @default false */
  deadLetteringOnMessageExpiration?: boolean | undefined;
  /** Largest message accepted; 1 KiB to 1,000,000 bytes. @default 262_144 */
  maxMessageSizeBytes?: number | undefined;
  /** Largest session state; at most 100 MiB. @default 262_144 */
  maxSessionStateSizeBytes?: number | undefined;
  /** Drop messages whose message id was seen within the window. @default false */
  requiresDuplicateDetection?: boolean | undefined;
  /** 20 s to 7 days. @default 600_000 */
  duplicateDetectionWindowMs?: number | undefined;
  /** Storage quota of the queue; at least 1 MiB. @default 1_073_741_824 */
  maxSizeBytes?: number | undefined;
}

/** A queue's settings as the broker reports them (every field set). */
export interface QueueProperties {
  requiresSession: boolean;
  lockDurationMs: number;
  maxDeliveryCount: number;
  /** Undefined: messages live until received. */
  defaultMessageTtlMs: number | undefined;
  deadLetteringOnMessageExpiration: boolean;
  maxMessageSizeBytes: number;
  maxSessionStateSizeBytes: number;
  requiresDuplicateDetection: boolean;
  duplicateDetectionWindowMs: number;
  maxSizeBytes: number;
}

/** Figures of a queue at the time of the request. */
export type QueueRuntimeInfo = EntityRuntimeInfo;

export interface QueueDescription {
  /** The name as first written (names match case-insensitively). */
  name: string;
  properties: QueueProperties;
  runtimeInfo: QueueRuntimeInfo;
}

export interface ListQueuesOptions extends CallOptions {
  /** Queues fetched per call; at most 1000. @default 100 (the broker's) */
  pageSize?: number | undefined;
}

export async function createQueue(
  rpc: Rpc,
  name: string,
  options?: QueueOptions,
  call?: CallOptions,
): Promise<QueueDescription> {
  const response = await invoke(rpc, call, (c) =>
    rpc.admin.createQueue({ name, properties: toProperties(options) }, c),
  );
  return fromQueue(response.queue, name);
}

export async function getQueue(
  rpc: Rpc,
  name: string,
  call?: CallOptions,
): Promise<QueueDescription> {
  const response = await invoke(rpc, call, (c) => rpc.admin.getQueue({ name }, c));
  return fromQueue(response.queue, name);
}

export async function updateQueue(
  rpc: Rpc,
  name: string,
  options: QueueOptions,
  call?: CallOptions,
): Promise<QueueDescription> {
  const response = await invoke(rpc, call, (c) =>
    rpc.admin.updateQueue({ name, properties: toProperties(options) }, c),
  );
  return fromQueue(response.queue, name);
}

export async function deleteQueue(rpc: Rpc, name: string, call?: CallOptions): Promise<void> {
  await invoke(rpc, call, (c) => rpc.admin.deleteQueue({ name }, c));
}

/** Every queue, in order of their lower-cased names, fetched page by page as iterated. */
export async function* listQueues(
  rpc: Rpc,
  options?: ListQueuesOptions,
): AsyncGenerator<QueueDescription> {
  const items = pagedList(
    (pageToken) =>
      invoke(rpc, options, (c) =>
        rpc.admin.listQueues({ pageSize: options?.pageSize ?? 0, pageToken }, c),
      ),
    (page) => page.queues,
  );
  for await (const queue of items) yield fromQueue(queue, queue.name);
}

function toProperties(
  o: QueueOptions | undefined,
): MessageInitShape<typeof QueuePropertiesSchema> | undefined {
  if (!o) return undefined;
  return {
    requiresSession: o.requiresSession,
    lockDuration: duration(o.lockDurationMs),
    maxDeliveryCount: o.maxDeliveryCount,
    defaultMessageTtl: duration(o.defaultMessageTtlMs),
    deadLetteringOnMessageExpiration: o.deadLetteringOnMessageExpiration,
    maxMessageSizeBytes: int64(o.maxMessageSizeBytes),
    maxSessionStateSizeBytes: int64(o.maxSessionStateSizeBytes),
    requiresDuplicateDetection: o.requiresDuplicateDetection,
    duplicateDetectionWindow: duration(o.duplicateDetectionWindowMs),
    maxSizeBytes: int64(o.maxSizeBytes),
  };
}

function fromQueue(queue: Queue | undefined, name: string): QueueDescription {
  if (!queue) throw new Error(`The broker's answer about queue "${name}" carries no queue`);
  const p = queue.properties;
  return {
    name: queue.name,
    properties: {
      requiresSession: p?.requiresSession ?? false,
      lockDurationMs: ms(p?.lockDuration) ?? 0,
      maxDeliveryCount: p?.maxDeliveryCount ?? 0,
      defaultMessageTtlMs: ms(p?.defaultMessageTtl),
      deadLetteringOnMessageExpiration: p?.deadLetteringOnMessageExpiration ?? false,
      maxMessageSizeBytes: Number(p?.maxMessageSizeBytes ?? 0),
      maxSessionStateSizeBytes: Number(p?.maxSessionStateSizeBytes ?? 0),
      requiresDuplicateDetection: p?.requiresDuplicateDetection ?? false,
      duplicateDetectionWindowMs: ms(p?.duplicateDetectionWindow) ?? 0,
      maxSizeBytes: Number(p?.maxSizeBytes ?? 0),
    },
    runtimeInfo: fromRuntimeInfo(queue.runtimeInfo),
  };
}
