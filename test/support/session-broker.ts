/** In-process brokers on the test run's nats-server, with session clients. */
import type { RunningSessionbus } from "../../src/app.js";
import { closeWithClients, startInProcessBroker } from "./grpc-broker.js";
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
  const broker = await startInProcessBroker();
  const clients: SessionClient[] = [];
  const newClient = (clientOptions: SessionClientOptions = options) => {
    const client = new SessionClient(broker.url, clientOptions);
    clients.push(client);
    return client;
  };
  const client = newClient();
  return { broker, client, newClient, close: () => closeWithClients(broker, clients) };
}
