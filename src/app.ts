import { setMaxListeners } from "node:events";
import path from "node:path";
import type { DescMethod } from "@bufbuild/protobuf";
import {
  file_grpc_health_v1_health,
  HealthCheckResponse_ServingStatus,
} from "../gen/ts/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection } from "../gen/ts/grpc/reflection/v1/reflection_pb.js";
import { file_sessionbus_v1_admin_service } from "../gen/ts/sessionbus/v1/admin_service_pb.js";
import { file_sessionbus_v1_messaging_service } from "../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { guardRoutes } from "./auth/call-guard.js";
import { metricsAccess } from "./auth/metrics-access.js";
import { ensureRootRule } from "./auth/root-rule.js";
import { TokenVerifier } from "./auth/token-verifier.js";
import { type Broker, createBroker } from "./broker/broker.js";
import {
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_METRICS_MAX_ENTITIES,
  type SessionbusConfig,
} from "./config.js";
import { log, setLogLevel } from "./observability/logger.js";
import { createMetrics } from "./observability/metrics.js";
import { registerAdminService } from "./server/admin-service.js";
import { startGrpcServer } from "./server/grpc-server.js";
import {
  createHealthStatus,
  type HealthStatus,
  registerHealthService,
} from "./server/health-service.js";
import { type HttpServer, startHttpServer } from "./server/http-server.js";
import { registerMessagingService } from "./server/messaging-service.js";
import { registerReflectionService } from "./server/reflection-service.js";
import { observeRoutes } from "./server/route-observer.js";
import { createRouteTable, type RouteTable } from "./server/route-table.js";
import { readTlsMaterial, type TlsMaterial } from "./server/tls-material.js";
import type { NatsAuth } from "./store/nats-auth.js";
import { type NatsServerProcess, startNatsServer } from "./store/nats-server-process.js";
import { ensurePrivateDir } from "./store/private-dir.js";
import { openStore, type Store } from "./store/store.js";

export interface RunningSessionbus {
  /** Base URL of the gRPC endpoint (grpc-js), e.g. "http://127.0.0.1:50051"; https:// with TLS. */
  url: string;
  port: number;
  /**
   * Base URL of the Connect and gRPC-Web endpoint (connect-node), e.g. "http://127.0.0.1:50052";
   * https:// with TLS.
   */
  httpUrl: string;
  httpPort: number;
  /** The NATS server in use (the embedded one, or NATS_URL). */
  natsUrl: string;
  /** Whether both ports serve TLS (SESSIONBUS_TLS_CERT and SESSIONBUS_TLS_KEY). */
  tls: boolean;
  /**
   * Reads the TLS files again and serves the new certificate on new connections of both
   * ports; open connections keep theirs. Throws (the old certificate stays) when a file is
   * unreadable or they make no usable certificate, or when TLS is off.
   */
  reloadTls(): void;
  /** Every method served (on both ports), from the one route table. */
  methods: readonly DescMethod[];
  /** Whether calls need tokens, and what the start did about the root rule (a line to log). */
  auth: { enabled: boolean; note: string };
  /** Copies of every stream (SESSIONBUS_REPLICAS), and what the start changed (a line to log). */
  replication: { replicas: number; note: string };
  /** Graceful stop: streams end, in-flight calls finish, NATS is drained. */
  close(): Promise<void>;
}

/** How long a stop waits for running calls (client streams the client keeps open) to end. */
const SHUTDOWN_GRACE_MS = 10_000;

/** Starts a broker: NATS (embedded unless configured), the store, and both servers. */
export async function startSessionbus(config: SessionbusConfig): Promise<RunningSessionbus> {
  if (config.logLevel !== undefined) setLogLevel(config.logLevel);
  checkAuthOffIsLocal(config);
  checkReplicasNeedCluster(config);
  // Read before anything starts, so a bad certificate stops the start with its file named.
  const tls = config.tls === undefined ? undefined : readTlsMaterial(config.tls);
  let embedded: NatsServerProcess | undefined;
  let natsUrl = config.natsUrl;
  let auth = config.natsAuth;
  if (natsUrl === undefined) {
    // The store and the server's generated credentials are the broker user's alone.
    await ensurePrivateDir(path.resolve(config.dataDir));
    embedded = await startNatsServer({
      storeDir: path.resolve(config.dataDir, "jetstream"),
      ...(config.natsServerBin === undefined ? {} : { binary: config.natsServerBin }),
    });
    natsUrl = embedded.url;
    auth = embedded.credentials && {
      user: embedded.credentials.user,
      password: embedded.credentials.password,
    };
  }
  try {
    return await serve(
      config,
      { url: natsUrl, ...(auth === undefined ? {} : { auth }) },
      embedded,
      tls,
    );
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
}

async function serve(
  config: SessionbusConfig,
  nats: { url: string; auth?: NatsAuth },
  embedded: NatsServerProcess | undefined,
  tls: TlsMaterial | undefined,
): Promise<RunningSessionbus> {
  const natsUrl = nats.url;
  let broker: Broker | undefined;
  const metrics = createMetrics({
    maxEntities: config.metrics?.maxEntities ?? DEFAULT_METRICS_MAX_ENTITIES,
    census: async () => (broker ? broker.census() : []),
  });
  const store = await openStore({
    ...nats,
    ...(config.replicas === undefined ? {} : { replicas: config.replicas }),
    ...(config.storeProbe === undefined ? {} : { probe: config.storeProbe }),
    observeRequest: (operation, seconds, ok) => metrics.natsRequest(operation, seconds, ok),
  });
  broker = createBroker(store, { metrics: metrics.broker });
  const health = createHealthStatus();
  // Without a store that takes writes the broker cannot serve: health says so while NATS is
  // away or the cluster has no quorum (the store's write probe).
  const servingStatus = (writable: boolean) =>
    writable
      ? HealthCheckResponse_ServingStatus.SERVING
      : HealthCheckResponse_ServingStatus.NOT_SERVING;
  store.onWritableChange((writable) => {
    if (writable) log.info("the store takes writes again");
    else log.warn("the store takes no writes (NATS away or no quorum): health is NOT_SERVING");
    health.set("", servingStatus(writable));
  });
  store.onConnectionChange((connected) => {
    if (connected) log.info("NATS connection restored");
    else log.warn("NATS connection lost: calls fail with STORE_UNAVAILABLE until it is back");
  });
  health.set("", servingStatus(store.writable));
  const shutdown = new AbortController();
  // Every call links its signal to this one: many concurrent calls are normal here.
  setMaxListeners(0, shutdown.signal);
  const auth = config.auth ?? { enabled: true };
  const verifier = auth.enabled ? new TokenVerifier(store.authorizationRules) : undefined;
  // Every method passes its access rule (with auth off, only the check that it has one),
  // and every call, refused or not, is timed (and traced, when a tracer is registered).
  const routes = observeRoutes(guardRoutes(createRoutes(broker, health), verifier), metrics);
  const limits = {
    host: config.host,
    maxRequestBytes: config.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    shutdownSignal: shutdown.signal,
    ...(tls === undefined ? {} : { tls }),
  };
  const grpc = await startGrpcServer(routes, { ...limits, port: config.port });
  let http: HttpServer;
  try {
    http = await startHttpServer(routes, {
      ...limits,
      port: config.httpPort ?? 0,
      metrics: {
        scrape: () => metrics.scrape(),
        contentType: metrics.contentType,
        authorize: metricsAccess(verifier, config.metrics?.token),
      },
    });
  } catch (error) {
    await grpc.close(0);
    throw error;
  }
  let authNote =
    "authorization OFF (SESSIONBUS_AUTH=off): every client may do everything; use it on a trusted machine only";
  if (auth.enabled) {
    try {
      authNote = await ensureRootRule(store.authorizationRules, {
        ...(auth.rootKey === undefined ? {} : { rootKey: auth.rootKey }),
        dataDir: config.dataDir,
        host: config.host,
        port: grpc.port,
        tls: tls !== undefined,
      });
    } catch (error) {
      await Promise.all([grpc.close(0), http.close(0)]);
      throw error;
    }
  }
  let closing: Promise<void> | undefined;
  const close = async () => {
    health.shutdown();
    shutdown.abort();
    // Clients open no new calls; running unary calls (settlements) finish.
    await Promise.all([grpc.close(SHUTDOWN_GRACE_MS), http.close(SHUTDOWN_GRACE_MS)]);
    await broker.close();
    await store.drain();
    await embedded?.stop();
  };
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const scheme = tls === undefined ? "http" : "https";
  return {
    url: `${scheme}://${host}:${grpc.port}`,
    port: grpc.port,
    httpUrl: `${scheme}://${host}:${http.port}`,
    httpPort: http.port,
    natsUrl,
    tls: tls !== undefined,
    methods: routes.methods.map((spec) => spec.method),
    auth: { enabled: auth.enabled, note: authNote },
    replication: { replicas: store.replicas, note: replicationNote(store) },
    reloadTls: () => {
      if (config.tls === undefined)
        throw new Error("TLS is off: there is no certificate to reload.");
      // Both read and checked first: a bad file changes neither port.
      const material = readTlsMaterial(config.tls);
      grpc.setTls(material);
      http.setTls(material);
    },
    close: () => {
      closing ??= close();
      return closing;
    },
  };
}

/**
 * With auth off, anyone who reaches the ports may do anything: allowed on a loopback address
 * only, unless SESSIONBUS_ALLOW_INSECURE=true says the operator means it.
 */
function checkAuthOffIsLocal(config: SessionbusConfig): void {
  const auth = config.auth ?? { enabled: true };
  if (auth.enabled || auth.allowInsecure || isLoopback(config.host)) return;
  throw new Error(
    `SESSIONBUS_AUTH=off would let anyone who reaches ${config.host} read, send and delete everything; refusing to listen there. Listen on 127.0.0.1 (SESSIONBUS_HOST), turn auth on, or set SESSIONBUS_ALLOW_INSECURE=true if the network is trusted.`,
  );
}

/** The embedded nats-server is a single node: it cannot keep more than one copy. */
function checkReplicasNeedCluster(config: SessionbusConfig): void {
  const replicas = config.replicas ?? 1;
  if (replicas === 1 || config.natsUrl !== undefined) return;
  throw new Error(
    `SESSIONBUS_REPLICAS=${replicas} needs a NATS cluster of at least ${replicas} JetStream servers, but without NATS_URL sessionbus starts its own single nats-server (cluster size 1). Set NATS_URL to the cluster's servers (npm run cluster starts one on this machine), or SESSIONBUS_REPLICAS=1.`,
  );
}

/** What the start did about replicas, for the log. */
function replicationNote(store: Store): string {
  const copies = store.replicas === 1 ? "1 replica" : `${store.replicas} replicas`;
  const changed = store.replicaChanges;
  if (changed.length === 0) return `every stream and bucket has ${copies} (SESSIONBUS_REPLICAS)`;
  const from = [...new Set(changed.map((change) => change.from))].sort().join(" or ");
  return `every stream and bucket has ${copies} (SESSIONBUS_REPLICAS); this start brought ${changed.length} from ${from} to ${store.replicas}`;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The one route table both servers serve. */
function createRoutes(broker: Broker, health: HealthStatus): RouteTable {
  const routes = createRouteTable();
  registerAdminService(routes, broker);
  registerMessagingService(routes, broker);
  registerHealthService(routes, health);
  registerReflectionService(routes, [
    file_sessionbus_v1_admin_service,
    file_sessionbus_v1_messaging_service,
    file_grpc_health_v1_health,
    file_grpc_reflection_v1_reflection,
  ]);
  return routes;
}
