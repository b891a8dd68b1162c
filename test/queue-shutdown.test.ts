/**
 * Graceful shutdown of the broker process (src/main.ts): SIGTERM ends open receive streams
 * instead of waiting for them, and the process exits with code 0.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, inject, it } from "vitest";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { SessionbusClient, uniqueName, within } from "./support/grpc-client.js";

const EXIT_BOUND_MS = 15_000;
/** Codes a stream may end with when its server goes away on purpose. */
const ENDED_CODES = [grpc.status.OK, grpc.status.UNAVAILABLE, grpc.status.CANCELLED];

const brokers: BrokerProcess[] = [];
const clients: SessionbusClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(brokers.splice(0).map((broker) => broker.stop()));
});

describe("SIGTERM", () => {
  it("ends open ReceiveStreams and exits with code 0", async () => {
    const broker = await startBrokerProcess({ natsUrl: inject("natsUrl") });
    brokers.push(broker);
    const client = new SessionbusClient(broker.url);
    clients.push(client);

    const queue = uniqueName("shutdown");
    await client.createQueue(queue);
    await client.send(queue, [{ body: Buffer.from("held") }]);

    // One stream holds a message and waits for credit; the other waits for messages.
    const holding = client.receiveStream({ entityPath: queue, prefetch: 1 });
    const held = await holding.next();
    expect(held?.deliveryCount).toBe(1);
    const waiting = client.receiveStream({ entityPath: queue, prefetch: 5 });
    // A round trip on the same HTTP/2 connection: by its answer the server has read the
    // headers of the stream opened before it.
    await client.peek(queue);

    broker.kill("SIGTERM");

    for (const stream of [holding, waiting]) {
      const status = await stream.finalStatus(EXIT_BOUND_MS);
      expect(ENDED_CODES).toContain(status.code);
    }
    const exit = await within(broker.exited, EXIT_BOUND_MS, "the broker process to exit");
    expect(exit, broker.output()).toEqual({ code: 0, signal: null });
    expect(broker.output()).toContain("SIGTERM received, shutting down");
  });

  it("exits with code 0 when nothing is open", async () => {
    const broker = await startBrokerProcess({ natsUrl: inject("natsUrl") });
    brokers.push(broker);
    const client = new SessionbusClient(broker.url);
    clients.push(client);
    await client.listQueues(1); // it serves; then it is told to stop
    broker.kill("SIGTERM");
    const exit = await within(broker.exited, EXIT_BOUND_MS, "the broker process to exit");
    expect(exit, broker.output()).toEqual({ code: 0, signal: null });
  });

  it("shuts down gracefully on a SIGTERM sent as soon as it reports listening", async () => {
    // Once it says it listens, a supervisor may stop it: that must be the graceful path too.
    // Ten brokers at once, since the moment right after the line is short.
    const started = await Promise.all(
      Array.from({ length: 10 }, () =>
        startBrokerProcess({ natsUrl: inject("natsUrl"), signalOnListening: "SIGTERM" }),
      ),
    );
    brokers.push(...started);
    const exits = await within(
      Promise.all(started.map((broker) => broker.exited)),
      EXIT_BOUND_MS,
      "the broker processes to exit",
    );
    exits.forEach((exit, i) => {
      expect(exit, started[i]?.output()).toEqual({ code: 0, signal: null });
    });
  });
});
