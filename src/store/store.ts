import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { AuthorizationError, connect, type NatsConnection } from "@nats-io/transport-node";
import { againAtStart } from "./again-at-start.js";
import { AuthorizationRuleStore } from "./authorization-rule-store.js";
import { DeferredLocks } from "./deferred-locks.js";
import { EntityRegistry } from "./entity-registry.js";
import { KvCompareAndSet } from "./kv-compare-and-set.js";
import { MessageStreams } from "./message-streams.js";
import { missingReplicas } from "./missing-replicas.js";
import { type NatsAuth, natsAuthOptions } from "./nats-auth.js";
import { type NatsRequestObserver, observeRequests } from "./nats-operations.js";
import { PipelinedRequests } from "./pipelined-requests.js";
import {
  bringStreamsToReplicas,
  checkClustered,
  type ReplicaChange,
  type ReplicaCount,
  replicasRefusal,
} from "./replicas.js";
import { ScheduleTimers } from "./schedule-timers.js";
import { SessionIndex } from "./session-index.js";
import { SessionRecords } from "./session-records.js";
import { SessionStateChunks } from "./session-state-chunks.js";
import {
  AUTHORIZATION_RULE_BUCKET,
  DEFERRED_LOCK_BUCKET,
  ENTITY_BUCKET,
  entityStreamNames,
  HEALTH_STREAM,
  SESSION_BUCKET,
  SESSION_STATE_BUCKET,
  TIMER_STREAM,
} from "./subjects.js";
import { ensureHealthStream, WriteProbe, type WriteProbeOptions } from "./write-probe.js";

/** Everything the broker keeps in NATS JetStream, behind one connection. */
export interface Store {
  entities: EntityRegistry;
  authorizationRules: AuthorizationRuleStore;
  messages: MessageStreams;
  deferredLocks: DeferredLocks;
  sessions: SessionRecords;
  sessionState: SessionStateChunks;
  sessionIndex: SessionIndex;
  scheduleTimers: ScheduleTimers;
  /** Waits for outstanding publishes and acks, then closes the connection. */
  drain(): Promise<void>;
  /** Calls `listener` with false when the NATS connection drops and true when it is back. */
  onConnectionChange(listener: (connected: boolean) => void): void;
  /**
   * Whether the store takes writes now, by the write probe (write-probe.ts): false from a
   * dropped connection or a failed probe write (no quorum, no leader, no disk) until a probe
   * write succeeds again.
   */
  readonly writable: boolean;
  /** Calls `listener` each time `writable` changes. */
  onWritableChange(listener: (writable: boolean) => void): void;
  /** Copies of every stream and bucket (SESSIONBUS_REPLICAS). */
  replicas: ReplicaCount;
  /** The streams this start brought from another replica count to `replicas`. */
  replicaChanges: readonly ReplicaChange[];
  /**
   * Which servers a stream's `replicas` copies cannot go to now (down or behind), in words;
   * undefined when none (see missing-replicas.ts). For a creation that failed.
   */
  missingReplicas(): Promise<string | undefined>;
  /** Resolves when the connection is closed for good. */
  closed: Promise<undefined | Error>;
}

export interface StoreOptions {
  /**
   * NATS server URL, e.g. "nats://127.0.0.1:4222", or several separated by commas (servers
   * of one cluster: the connection starts at any that answers and moves on when it fails).
   */
  url: string;
  /** Name the connection shows in the server's monitoring. @default "sessionbus" */
  name?: string;
  /** Credentials and TLS for the server. @default none */
  auth?: NatsAuth;
  /**
   * Copies of every stream and key-value bucket; more than 1 needs a cluster. Streams and
   * buckets made earlier with another count are brought to it at open.
   * @default 1
   */
  replicas?: ReplicaCount;
  /** Timing of the write probe behind `writable`. @default see WriteProbeOptions */
  probe?: WriteProbeOptions;
  /** Sees every request to NATS, with its duration (for the metrics). @default none */
  observeRequest?: NatsRequestObserver;
}

/** nats.js's default for JetStream requests. */
const REQUEST_TIMEOUT_MS = 5000;

export async function openStore(options: StoreOptions): Promise<Store> {
  const nc = await connect({
    servers: options.url.split(",").map((url) => url.trim()),
    name: options.name ?? "sessionbus",
    maxReconnectAttempts: -1,
    // Async stack traces cost two Error objects per request on the hot path.
    noAsyncTraces: true,
    ...(await natsAuthOptions(options.auth)),
  }).catch((error: unknown) => {
    throw connectFailure(error, options.url);
  });
  if (options.observeRequest) observeRequests(nc, options.observeRequest);
  try {
    return await openOn(nc, options.replicas ?? 1, options.probe ?? {}, options.observeRequest);
  } catch (error) {
    await nc.close();
    throw error;
  }
}

async function openOn(
  nc: NatsConnection,
  replicas: ReplicaCount,
  probeOptions: WriteProbeOptions,
  observe?: NatsRequestObserver,
): Promise<Store> {
  checkClustered(nc.info, replicas);
  const jsm = await jetstreamManager(nc);
  // A server that is not clustered keeps one copy of everything: nothing to bring to a count
  // (and with thousands of queues, nothing to look at on every start).
  const bring = async (names: string[]): Promise<ReplicaChange[]> =>
    nc.info?.cluster ? againAtStart(() => bringStreamsToReplicas(jsm, names, replicas)) : [];
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  const buckets = [
    ENTITY_BUCKET,
    DEFERRED_LOCK_BUCKET,
    SESSION_BUCKET,
    SESSION_STATE_BUCKET,
    AUTHORIZATION_RULE_BUCKET,
  ];
  // The health stream first, alone: a cluster too small for `replicas` refuses it (whether it
  // is made or changed) before anything else is touched.
  const replicaChanges = await bring([HEALTH_STREAM])
    .then(async (changes) => {
      await againAtStart(() => ensureHealthStream(jsm, replicas));
      return changes;
    })
    .catch((error: unknown) => {
      throw replicasRefusal(error, replicas, nc.info) ?? error;
    });
  // Streams made earlier with another count are updated in place; missing ones are made below.
  replicaChanges.push(...(await bring([...buckets.map((name) => `KV_${name}`), TIMER_STREAM])));
  // With replicas, a bucket's reads go to its stream's leader, not to any current replica
  // (a direct get), which may not yet have applied the last write: a session record read
  // there could show a lock its holder has just taken as free, or a state just set as
  // the one before (see MessageStreams.directGet).
  const bucket = (name: string) =>
    againAtStart(() => kvm.create(name, { history: 1, replicas, allow_direct: replicas === 1 }));
  // The per-message requests (publishes, confirmed acks, offers) share one reply subscription.
  const requests = new PipelinedRequests(nc, REQUEST_TIMEOUT_MS, observe);
  // Compare-and-set on each bucket, exact with replicas too (kv-compare-and-set.ts).
  const compareAndSet = (name: string) => new KvCompareAndSet(requests, name, replicas > 1);
  const entityKv = await bucket(ENTITY_BUCKET);
  const lockKv = await bucket(DEFERRED_LOCK_BUCKET);
  const sessionKv = await bucket(SESSION_BUCKET);
  const stateKv = await bucket(SESSION_STATE_BUCKET);
  const scheduleTimers = new ScheduleTimers(js, jsm, replicas);
  await againAtStart(() => scheduleTimers.ensure());
  const entities = new EntityRegistry(entityKv, compareAndSet(ENTITY_BUCKET));
  await againAtStart(() => entities.startWatching());
  // Streams of entities made with another count: updated in place, a few at a time.
  replicaChanges.push(...(await bring(entities.records().flatMap(entityStreamNames))));
  const authorizationRules = new AuthorizationRuleStore(
    await bucket(AUTHORIZATION_RULE_BUCKET),
    compareAndSet(AUTHORIZATION_RULE_BUCKET),
  );
  await againAtStart(() => authorizationRules.startWatching());
  const probe = new WriteProbe(nc, probeOptions);
  const listeners: ((connected: boolean) => void)[] = [
    (connected) => probe.connectionChanged(connected),
  ];
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type !== "disconnect" && status.type !== "reconnect") continue;
      for (const listener of listeners) listener(status.type === "reconnect");
    }
  })();
  probe.start();
  return {
    entities,
    authorizationRules,
    messages: new MessageStreams(nc, js, jsm, requests, () => nc.flush(), replicas),
    deferredLocks: new DeferredLocks(lockKv, compareAndSet(DEFERRED_LOCK_BUCKET)),
    sessions: new SessionRecords(sessionKv, SESSION_BUCKET, compareAndSet(SESSION_BUCKET), jsm),
    sessionState: new SessionStateChunks(stateKv),
    sessionIndex: new SessionIndex(nc, js, jsm, requests, replicas),
    scheduleTimers,
    drain: async () => {
      probe.stop();
      entities.stop();
      authorizationRules.stop();
      if (!nc.isClosed()) await nc.drain();
    },
    onConnectionChange: (listener) => listeners.push(listener),
    get writable() {
      return probe.writable;
    },
    onWritableChange: (listener) => probe.onChange(listener),
    replicas,
    replicaChanges,
    missingReplicas: () => missingReplicas(jsm, replicas),
    closed: nc.closed().then((error) => error ?? undefined),
  };
}

/** A refusal of the credentials names the settings that supply them. */
function connectFailure(error: unknown, url: string): Error {
  if (!(error instanceof AuthorizationError)) return error as Error;
  return new Error(
    `the NATS server at ${url} refused the connection (${error.message}): set its credentials with NATS_CREDS, NATS_USER and NATS_PASSWORD, or NATS_TOKEN`,
    { cause: error },
  );
}
