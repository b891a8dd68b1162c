/** An in-process broker on a free port, against the test run's nats-server, with a client. */
import { inject } from "vitest";
import { type RunningSessionbus, startSessionbus } from "../../src/app.js";
import { SessionbusClient } from "./grpc-client.js";

export interface TestBroker {
  broker: RunningSessionbus;
  client: SessionbusClient;
  /** Deletes the queues the client created, closes it, then the broker. */
  close(): Promise<void>;
}

export async function startTestBroker(): Promise<TestBroker> {
  const broker = await startSessionbus({
    host: "127.0.0.1",
    port: 0,
    natsUrl: inject("natsUrl"),
    dataDir: "unused",
    natsServerBin: undefined,
  });
  const client = new SessionbusClient(broker.url);
  return {
    broker,
    client,
    close: async () => {
      try {
        await client.deleteCreatedQueues();
      } finally {
        client.close();
      }
      await broker.close();
    },
  };
}
