import type { Store } from "../store/store.js";
import type { EntityRuntime } from "./entities/entity-streams.js";

/**
 * Why a message went to a dead-letter queue: a receiver asked for it (whatever reason it
 * gave), its delivery count passed max_delivery_count, its time to live ran out, a topic
 * message without a session id matched a session subscription, or a scheduled message
 * could no longer be sent when it came due. Fixed, so a metric label built from it stays
 * small; the reason text a receiver gives is never a label.
 */
export type DeadLetterCause =
  | "receiver"
  | "max_delivery_count"
  | "ttl_expired"
  | "session_id_null"
  | "activation_refused";

export const DEAD_LETTER_CAUSES: readonly DeadLetterCause[] = [
  "receiver",
  "max_delivery_count",
  "ttl_expired",
  "session_id_null",
  "activation_refused",
];

/** An entity as the counters see it: its identity (stream id) and how to name it. */
export interface MeteredEntity {
  /** The stream id of the entity (of its dead-letter queue for `…/$deadletterqueue`). */
  identity: string;
  /** The queue, topic or subscription the path belongs to. */
  record: { name: string };
  address: { deadLetter: boolean };
}

/**
 * What the broker reports as it works, for the metrics (src/observability/metrics.ts):
 * plain counts, each an increment on the hot path. The broker depends on this port only;
 * a broker made without metrics counts into NO_METRICS.
 */
export interface BrokerMetrics {
  /** Messages stored by Send, SendStream or ScheduleMessages (duplicates left out). */
  sent(entity: MeteredEntity, count: number): void;
  /** Messages handed to a receiver (receive streams, ReceiveDeferred). */
  delivered(entity: MeteredEntity, count: number): void;
  completed(entity: MeteredEntity, count: number): void;
  abandoned(entity: MeteredEntity, count: number): void;
  deferred(entity: MeteredEntity, count: number): void;
  /** Copies stored in the entity's dead-letter queue, by cause. */
  deadLettered(entity: MeteredEntity, cause: DeadLetterCause): void;
  /** Messages whose time to live ran out (dead-lettered or dropped). */
  expired(entity: MeteredEntity, count: number): void;
  /** A message lock of this process ran out before its message was settled. */
  messageLockLost(identity: string, entityPath: string): void;
  /** A session lock this process handed out was found lost (expired, or taken over). */
  sessionLockLost(identity: string, entityPath: string): void;
}

/** An entity the broker knows, for the metrics' entity labels and gauges. */
export interface EntityCensus {
  /** Stream id (of the dead-letter stream for a dead-letter queue). */
  identity: string;
  /** The path as first written; `<path>/$deadletterqueue` for a dead-letter queue. */
  name: string;
  /** Reads the runtime figures (queues and subscriptions only; a topic holds none itself). */
  figures?: () => Promise<EntityRuntime>;
}

const ignore = () => undefined;

export const NO_METRICS: BrokerMetrics = {
  sent: ignore,
  delivered: ignore,
  completed: ignore,
  abandoned: ignore,
  deferred: ignore,
  deadLettered: ignore,
  expired: ignore,
  messageLockLost: ignore,
  sessionLockLost: ignore,
};

/**
 * The metrics of the broker working on `store`. A broker has one store and a store one
 * broker, so code deep in the broker that has the store (dead-letter copies, expiry)
 * reports without a metrics parameter threaded through every call.
 */
const byStore = new WeakMap<Store, BrokerMetrics>();

export function useMetrics(store: Store, metrics: BrokerMetrics): void {
  byStore.set(store, metrics);
}

export function metricsOf(store: Store): BrokerMetrics {
  return byStore.get(store) ?? NO_METRICS;
}
