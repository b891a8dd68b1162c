import { setMaxListeners } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  file_grpc_health_v1_health,
  HealthCheckResponse_ServingStatus,
} from "../gen/ts/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection } from "../gen/ts/grpc/reflection/v1/reflection_pb.js";
import { file_sessionbus_v1_admin_service } from "../gen/ts/sessionbus/v1/admin_service_pb.js";
import { file_sessionbus_v1_messaging_service } from "../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { createBroker } from "./broker/broker.js";
import type { SessionbusConfig } from "./config.js";
import { registerAdminService } from "./server/admin-service.js";
import { createHealthStatus, registerHealthService } from "./server/health-service.js";
import { registerMessagingService } from "./server/messaging-service.js";
import { registerReflectionService } from "./server/reflection-service.js";
import { type NatsServerProcess, startNatsServer } from "./store/nats-server-process.js";
import { openStore } from "./store/store.js";

export interface RunningSessionbus {
  /** Base URL of the gRPC/Connect endpoint, e.g. "http://127.0.0.1:50051". */
  url: string;
  port: number;
  /** The NATS server in use (the embedded one, or NATS_URL). */
  natsUrl: string;
  /** Graceful stop: streams end, in-flight calls finish, NATS is drained. */
  close(): Promise<void>;
}

/** Starts a broker: NATS (embedded unless configured), the store, and the HTTP/2 server. */
export async function startSessionbus(config: SessionbusConfig): Promise<RunningSessionbus> {
  let embedded: NatsServerProcess | undefined;
  let natsUrl = config.natsUrl;
  if (natsUrl === undefined) {
    embedded = await startNatsServer({
      storeDir: path.resolve(config.dataDir, "jetstream"),
      ...(config.natsServerBin === undefined ? {} : { binary: config.natsServerBin }),
    });
    natsUrl = embedded.url;
  }
  try {
    return await serve(config, natsUrl, embedded);
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
}

async function serve(
  config: SessionbusConfig,
  natsUrl: string,
  embedded: NatsServerProcess | undefined,
): Promise<RunningSessionbus> {
  const store = await openStore({ url: natsUrl });
  const broker = createBroker(store);
  const health = createHealthStatus();
  // Without its store the broker cannot serve: health says so while NATS is away.
  store.onConnectionChange((connected) =>
    health.set(
      "",
      connected
        ? HealthCheckResponse_ServingStatus.SERVING
        : HealthCheckResponse_ServingStatus.NOT_SERVING,
    ),
  );
  const shutdown = new AbortController();
  // Every call links its signal to this one: many concurrent calls are normal here.
  setMaxListeners(0, shutdown.signal);
  const handler = connectNodeAdapter({
    shutdownSignal: shutdown.signal,
    routes(router) {
      registerAdminService(router, broker);
      registerMessagingService(router, broker, shutdown.signal);
      registerHealthService(router, health);
      registerReflectionService(router, [
        file_sessionbus_v1_admin_service,
        file_sessionbus_v1_messaging_service,
        file_grpc_health_v1_health,
        file_grpc_reflection_v1_reflection,
      ]);
    },
  });
  // Session state may be up to 100 MiB in one message; the default cap of 10 MB of
  // buffered data per HTTP/2 connection would refuse it.
  const server = http2.createServer({ maxSessionMemory: 512 }, handler);
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const close = async () => {
    health.shutdown();
    shutdown.abort();
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    // GOAWAY: clients open no new streams; running unary calls (settlements) finish.
    for (const session of sessions) session.close();
    await stopped;
    await broker.close();
    await store.drain();
    await embedded?.stop();
  };
  return {
    url: `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`,
    port,
    natsUrl,
    close: () => {
      closing ??= close();
      return closing;
    },
  };
}
