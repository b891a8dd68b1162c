import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import {
  type BrokerMetrics,
  DEAD_LETTER_CAUSES,
  type EntityCensus,
} from "../broker/broker-metrics.js";
import type { EntityRuntime } from "../broker/entities/entity-streams.js";
import { EntityCountTable, type LabelledCounts } from "./entity-counts.js";
import { log } from "./logger.js";

/** Which port a call came through: gRPC (grpc-js) or HTTP (Connect, gRPC-Web). */
export type RpcPort = "grpc" | "http";

/** Records one call of a method: its port, status code (0 = OK) and duration. */
export type RpcObserver = (port: RpcPort, code: number, seconds: number) => void;

export interface MetricsOptions {
  /** Entities with a label of their own; the rest count under entity="(other)". */
  maxEntities: number;
  /** Every entity that exists now (the broker's census). */
  census: () => Promise<EntityCensus[]>;
}

/** The metrics of one broker, served at `/metrics` in the Prometheus text format. */
export interface SessionbusMetrics {
  /** What the broker counts into. */
  readonly broker: BrokerMetrics;
  /** The observer of one method's calls (children made once per method, port and code). */
  rpc(method: string): RpcObserver;
  /** A NATS request of the store: its operation (a fixed list), duration and outcome. */
  natsRequest(operation: string, seconds: number, ok: boolean): void;
  /** The text of a scrape: process metrics, then the broker's. */
  scrape(): Promise<string>;
  readonly contentType: string;
}

/** Figures younger than this are not read again by a scrape. */
const FIGURES_MAX_AGE_MS = 1_000;
/** Entities whose figures are read at once during a scrape. */
const FIGURES_CONCURRENCY = 4;
/** A scrape waits this long for figures; what is not read by then shows its last value. */
const FIGURES_DEADLINE_MS = 3_000;

/** gRPC status names by code (connect's Code numbers are gRPC's). */
const CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** Seconds: from well under a millisecond (a cached GetQueue) to long streams. */
const RPC_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];
const NATS_BUCKETS = [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

let processRegistry: Registry | undefined;

/** Process metrics (CPU, memory, event loop, GC): one set per process, however many brokers. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export function createMetrics(options: MetricsOptions): SessionbusMetrics {
  const registry = new Registry();
  let pruned = 0;
  // Without scrapes, deleted entities are forgotten here, at most once a minute.
  const prune = () => {
    if (Date.now() - pruned < 60_000) return;
    pruned = Date.now();
    options.census().then(
      (census) => counts.reconcile(census),
      () => undefined,
    );
  };
  const counts = new EntityCountTable(options.maxEntities, prune);
  const counter = (name: string, help: string, labelNames: string[]) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  const gauge = (name: string, help: string, labelNames: string[] = ["entity"]) =>
    new Gauge({ name, help, labelNames, registers: [registry] });

  const counters = {
    sent: counter(
      "sessionbus_messages_sent_total",
      "Messages stored by Send, SendStream and ScheduleMessages (duplicates left out), by the queue or topic sent to.",
      ["entity"],
    ),
    delivered: counter(
      "sessionbus_messages_delivered_total",
      "Messages handed to receivers (receive streams, ReceiveDeferred).",
      ["entity"],
    ),
    completed: counter("sessionbus_messages_completed_total", "Messages completed.", ["entity"]),
    abandoned: counter("sessionbus_messages_abandoned_total", "Messages abandoned.", ["entity"]),
    deferred: counter("sessionbus_messages_deferred_total", "Messages deferred.", ["entity"]),
    deadLettered: counter(
      "sessionbus_messages_dead_lettered_total",
      "Messages moved to the entity's dead-letter queue, by cause: receiver, max_delivery_count, ttl_expired, session_id_null, activation_refused.",
      ["entity", "cause"],
    ),
    expired: counter(
      "sessionbus_messages_expired_total",
      "Messages whose time to live ran out (dead-lettered or dropped).",
      ["entity"],
    ),
    locksLost: counter(
      "sessionbus_locks_lost_total",
      "Locks of this broker that ran out or were taken over before their holder let go: message locks (unsettled) and session locks.",
      ["entity", "lock"],
    ),
  };
  const gauges = {
    active: gauge("sessionbus_entity_active_messages", "Receivable or locked messages."),
    scheduled: gauge("sessionbus_entity_scheduled_messages", "Messages scheduled, not due yet."),
    deferred: gauge("sessionbus_entity_deferred_messages", "Deferred messages."),
    deadLettered: gauge(
      "sessionbus_entity_dead_lettered_messages",
      "Messages in the entity's dead-letter queue.",
    ),
    sessions: gauge("sessionbus_entity_sessions", "Sessions with a message or a state."),
    lockedSessions: gauge("sessionbus_entity_locked_sessions", "Sessions locked now."),
    sizeBytes: gauge(
      "sessionbus_entity_size_bytes",
      "Bytes stored for the entity (messages, dead-letter queue, session states): what max_size_bytes limits.",
    ),
  };
  const entities = gauge(
    "sessionbus_metrics_entities",
    "Entities this broker knows (queues, topics, subscriptions, dead-letter queues), and how many have an entity label of their own.",
    ["labelled"],
  );
  const rpcDuration = new Histogram({
    name: "sessionbus_rpc_duration_seconds",
    help: "Duration of RPC calls, by method, status code and port; a stream from its start to its end.",
    labelNames: ["method", "code", "port"],
    buckets: RPC_BUCKETS,
    registers: [registry],
  });
  const natsDuration = new Histogram({
    name: "sessionbus_nats_request_duration_seconds",
    help: "Duration of the broker's requests to NATS (JetStream API, publishes, acks), by operation and result.",
    labelNames: ["operation", "result"],
    buckets: NATS_BUCKETS,
    registers: [registry],
  });
  const natsChildren = new Map<string, Histogram.Internal<string>>();

  /** Figures of labelled queues and subscriptions, by identity, with when they were read. */
  const figures = new Map<string, { name: string; at: number; runtime: EntityRuntime }>();
  const reading = new Set<string>();
  let refreshing: Promise<void> | undefined;

  const refresh = async () => {
    const census = await options.census();
    const rows = counts.reconcile(census);
    const alive = new Set(census.map((entry) => entry.identity));
    for (const identity of figures.keys()) {
      if (!alive.has(identity) || !counts.hasLabel(identity)) figures.delete(identity);
    }
    const now = Date.now();
    const due = census.filter(
      (entry) =>
        entry.figures !== undefined &&
        counts.hasLabel(entry.identity) &&
        !reading.has(entry.identity) &&
        now - (figures.get(entry.identity)?.at ?? 0) >= FIGURES_MAX_AGE_MS,
    );
    await withinDeadline(
      readFigures(due, async (entry) => {
        reading.add(entry.identity);
        try {
          const runtime = await (entry.figures as () => Promise<EntityRuntime>)();
          if (counts.hasLabel(entry.identity)) {
            figures.set(entry.identity, { name: entry.name, at: Date.now(), runtime });
          }
        } catch (error) {
          log.debug({ err: error, entity: entry.name }, "metrics: figures not read");
        } finally {
          reading.delete(entry.identity);
        }
      }),
      FIGURES_DEADLINE_MS,
    );
    showCounts(rows);
    for (const each of Object.values(gauges)) each.reset();
    for (const { name, runtime } of figures.values()) {
      gauges.active.set({ entity: name }, runtime.activeMessageCount);
      gauges.scheduled.set({ entity: name }, runtime.scheduledMessageCount);
      gauges.deferred.set({ entity: name }, runtime.deferredMessageCount);
      gauges.deadLettered.set({ entity: name }, runtime.deadLetterMessageCount);
      gauges.sessions.set({ entity: name }, runtime.sessionCount);
      gauges.lockedSessions.set({ entity: name }, runtime.lockedSessionCount);
      gauges.sizeBytes.set({ entity: name }, runtime.sizeBytes);
    }
    const labelled = census.filter((entry) => counts.hasLabel(entry.identity)).length;
    entities.set({ labelled: "true" }, labelled);
    entities.set({ labelled: "false" }, census.length - labelled);
  };

  const showCounts = (rows: LabelledCounts[]) => {
    for (const each of Object.values(counters)) each.reset();
    for (const { entity, counts: c } of rows) {
      counters.sent.inc({ entity }, c.sent);
      counters.delivered.inc({ entity }, c.delivered);
      counters.completed.inc({ entity }, c.completed);
      counters.abandoned.inc({ entity }, c.abandoned);
      counters.deferred.inc({ entity }, c.deferred);
      DEAD_LETTER_CAUSES.forEach((cause, i) => {
        counters.deadLettered.inc({ entity, cause }, c.deadLettered[i] ?? 0);
      });
      counters.expired.inc({ entity }, c.expired);
      counters.locksLost.inc({ entity, lock: "message" }, c.messageLocksLost);
      counters.locksLost.inc({ entity, lock: "session" }, c.sessionLocksLost);
    }
  };

  return {
    broker: counts,
    rpc(method) {
      const children: Record<RpcPort, Histogram.Internal<string>[]> = { grpc: [], http: [] };
      return (port, code, seconds) => {
        const byCode = children[port];
        let child = byCode[code];
        if (child === undefined) {
          child = rpcDuration.labels(method, CODE_NAMES[code] ?? String(code), port);
          byCode[code] = child;
        }
        child.observe(seconds);
      };
    },
    natsRequest(operation, seconds, ok) {
      const key = ok ? operation : `${operation} error`;
      let child = natsChildren.get(key);
      if (child === undefined) {
        child = natsDuration.labels(operation, ok ? "ok" : "error");
        natsChildren.set(key, child);
      }
      child.observe(seconds);
    },
    async scrape() {
      refreshing ??= refresh().finally(() => {
        refreshing = undefined;
      });
      await refreshing;
      const [own, shared] = await Promise.all([registry.metrics(), processMetrics().metrics()]);
      return `${shared}${own}`;
    },
    contentType: registry.contentType,
  };
}

/** Runs `read` for every entry, at most FIGURES_CONCURRENCY at once. */
async function readFigures(
  entries: readonly EntityCensus[],
  read: (entry: EntityCensus) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < entries.length) await read(entries[next++] as EntityCensus);
  };
  await Promise.all(Array.from({ length: Math.min(FIGURES_CONCURRENCY, entries.length) }, lane));
}

/** Waits for `work` at most `ms`; the work goes on after, unwaited. */
async function withinDeadline(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}
