/** The hooks of a test file whose tests share one in-process broker. */
import { afterAll, afterEach, beforeAll } from "vitest";

/** What the hooks need of a started broker (startTestBroker, startSessionBroker, …). */
export interface StartedBroker {
  client: { deleteCreatedQueues(): Promise<void> };
  close(): Promise<void>;
}

export interface BrokerPerFileOptions {
  /**
   * Delete the queues the client created after each test; off where tests run concurrently
   * (closing the broker deletes them then).
   * @default true
   */
  cleanUpAfterEachTest?: boolean;
}

/**
 * Starts a broker with `start` before the file's tests and hands it to `started`. After each
 * test, cancels the receive streams pushed to the returned array and deletes the queues the
 * client created; after the file, closes the broker.
 */
export function brokerPerFile<B extends StartedBroker>(
  start: () => Promise<B>,
  started: (broker: B) => void,
  options: BrokerPerFileOptions = {},
): { cancel(): void }[] {
  const streams: { cancel(): void }[] = [];
  let running: B | undefined;

  beforeAll(async () => {
    running = await start();
    started(running);
  });

  if (options.cleanUpAfterEachTest ?? true) {
    afterEach(async () => {
      for (const stream of streams.splice(0)) stream.cancel();
      await running?.client.deleteCreatedQueues();
    });
  }

  afterAll(async () => {
    await running?.close();
  });

  return streams;
}
