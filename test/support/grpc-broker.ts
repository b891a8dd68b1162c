/** An in-process broker on a free port, against the test run's nats-server, with a client. */
import { inject } from "vitest";
import { type RunningSessionbus, startSessionbus } from "../../src/app.js";
import type { SessionbusConfig } from "../../src/config.js";
import { type GrpcClient, SessionbusClient } from "./grpc-client.js";
import { TEST_ROOT_KEY } from "./test-credentials.js";

export interface TestBroker {
  broker: RunningSessionbus;
  client: SessionbusClient;
  /** Deletes the queues the client created, closes it, then the broker. */
  close(): Promise<void>;
}

/**
 * A broker on a free port of 127.0.0.1, on the test run's nats-server unless `overrides`
 * say otherwise (e.g. `cluster.brokerConfig(3)` of nats-cluster.ts).
 */
export function startInProcessBroker(
  overrides: Partial<SessionbusConfig> = {},
): Promise<RunningSessionbus> {
  return startSessionbus({
    host: "127.0.0.1",
    port: 0,
    natsUrl: inject("natsUrl"),
    dataDir: "unused",
    natsServerBin: undefined,
    auth: { enabled: true, rootKey: TEST_ROOT_KEY },
    ...overrides,
  });
}

/** Deletes the queues the clients created, closes them, then the broker. */
export async function closeWithClients(
  broker: RunningSessionbus,
  clients: readonly GrpcClient[],
): Promise<void> {
  try {
    for (const each of clients) await each.deleteCreatedQueues();
  } finally {
    for (const each of clients) each.close();
  }
  await broker.close();
}

export async function startTestBroker(): Promise<TestBroker> {
  const broker = await startInProcessBroker();
  const client = new SessionbusClient(broker.url);
  return { broker, client, close: () => closeWithClients(broker, [client]) };
}
