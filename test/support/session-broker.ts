/** In-process brokers on the test run's nats-server, with session clients. */
import { inject } from "vitest";
import { type RunningSessionbus, startSessionbus } from "../../src/app.js";
import { SessionClient, type SessionClientOptions } from "./session-client.js";

export interface SessionTestBroker {
  broker: RunningSessionbus;
  client: SessionClient;
  /** Another client of this broker (its own HTTP/2 connection); closed with the broker. */
  newClient(options?: SessionClientOptions): SessionClient;
  /** Deletes the queues the clients created, closes them, then the broker. */
  close(): Promise<void>;
}

export async function startSessionBroker(
  options: SessionClientOptions = {},
): Promise<SessionTestBroker> {
  const broker = await startSessionbus({
    host: "127.0.0.1",
    port: 0,
    natsUrl: inject("natsUrl"),
    dataDir: "unused",
    natsServerBin: undefined,
  });
  const clients: SessionClient[] = [];
  const newClient = (clientOptions: SessionClientOptions = options) => {
    const client = new SessionClient(broker.url, clientOptions);
    clients.push(client);
    return client;
  };
  const client = newClient();
  return {
    broker,
    client,
    newClient,
    close: async () => {
      try {
        for (const each of clients) await each.deleteCreatedQueues();
      } finally {
        for (const each of clients) each.close();
      }
      await broker.close();
    },
  };
}
