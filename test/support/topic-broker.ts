/** An in-process broker on the test run's nats-server, with a topic client. */
import type { RunningSessionbus } from "../../src/app.js";
import { closeWithClients, startInProcessBroker } from "./grpc-broker.js";
import { TopicClient } from "./topic-client.js";

export interface TopicTestBroker {
  broker: RunningSessionbus;
  client: TopicClient;
  /** Deletes the topics and queues the client created, closes it, then the broker. */
  close(): Promise<void>;
}

export async function startTopicBroker(): Promise<TopicTestBroker> {
  const broker = await startInProcessBroker();
  const client = new TopicClient(broker.url);
  return { broker, client, close: () => closeWithClients(broker, [client]) };
}
