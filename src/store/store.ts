import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { AuthorizationError, connect, type NatsConnection } from "@nats-io/transport-node";
import { AuthorizationRuleStore } from "./authorization-rule-store.js";
import { DeferredLocks } from "./deferred-locks.js";
import { EntityRegistry } from "./entity-registry.js";
import { MessageStreams } from "./message-streams.js";
import { type NatsAuth, natsAuthOptions } from "./nats-auth.js";
import { type NatsRequestObserver, observeRequests } from "./nats-operations.js";
import { PipelinedRequests } from "./pipelined-requests.js";
import { ScheduleTimers } from "./schedule-timers.js";
import { SessionIndex } from "./session-index.js";
import { SessionRecords } from "./session-records.js";
import { SessionStateChunks } from "./session-state-chunks.js";
import {
  AUTHORIZATION_RULE_BUCKET,
  DEFERRED_LOCK_BUCKET,
  ENTITY_BUCKET,
  SESSION_BUCKET,
  SESSION_STATE_BUCKET,
} from "./subjects.js";

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
  /** Resolves when the connection is closed for good. */
  closed: Promise<undefined | Error>;
}

export interface StoreOptions {
  /** NATS server URL, e.g. "nats://127.0.0.1:4222". */
  url: string;
  /** Name the connection shows in the server's monitoring. @default "sessionbus" */
  name?: string;
  /** Credentials and TLS for the server. @default none */
  auth?: NatsAuth;
  /** Sees every request to NATS, with its duration (for the metrics). @default none */
  observeRequest?: NatsRequestObserver;
}

/** nats.js's default for JetStream requests. */
const REQUEST_TIMEOUT_MS = 5000;

export async function openStore(options: StoreOptions): Promise<Store> {
  const nc = await connect({
    servers: options.url,
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
    return await openOn(nc, options.observeRequest);
  } catch (error) {
    await nc.close();
    throw error;
  }
}

async function openOn(nc: NatsConnection, observe?: NatsRequestObserver): Promise<Store> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  const entityKv = await kvm.create(ENTITY_BUCKET, { history: 1 });
  const lockKv = await kvm.create(DEFERRED_LOCK_BUCKET, { history: 1 });
  const sessionKv = await kvm.create(SESSION_BUCKET, { history: 1 });
  const stateKv = await kvm.create(SESSION_STATE_BUCKET, { history: 1 });
  const scheduleTimers = new ScheduleTimers(js, jsm);
  await scheduleTimers.ensure();
  const entities = new EntityRegistry(entityKv);
  await entities.startWatching();
  const authorizationRules = new AuthorizationRuleStore(
    await kvm.create(AUTHORIZATION_RULE_BUCKET, { history: 1 }),
  );
  await authorizationRules.startWatching();
  // The per-message requests (publishes, confirmed acks, offers) share one reply subscription.
  const requests = new PipelinedRequests(nc, REQUEST_TIMEOUT_MS, observe);
  const listeners: ((connected: boolean) => void)[] = [];
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type !== "disconnect" && status.type !== "reconnect") continue;
      for (const listener of listeners) listener(status.type === "reconnect");
    }
  })();
  return {
    entities,
    authorizationRules,
    messages: new MessageStreams(nc, js, jsm, requests, () => nc.flush()),
    deferredLocks: new DeferredLocks(lockKv),
    sessions: new SessionRecords(sessionKv, SESSION_BUCKET, requests),
    sessionState: new SessionStateChunks(stateKv),
    sessionIndex: new SessionIndex(nc, js, jsm, requests),
    scheduleTimers,
    drain: async () => {
      entities.stop();
      authorizationRules.stop();
      if (!nc.isClosed()) await nc.drain();
    },
    onConnectionChange: (listener) => listeners.push(listener),
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
