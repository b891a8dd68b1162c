/**
 * The runtime figures of GetQueue come from a cache of JetStream's stream figures
 * (src/store/figures-cache.ts): a write through the broker that is asked shows at once,
 * a write through another broker on the same nats-server within FIGURES_MAX_AGE_MS.
 */
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIGURES_MAX_AGE_MS } from "../src/store/figures-cache.js";
import { startTestBroker, type TestBroker } from "./support/grpc-broker.js";
import { type SessionbusClient, uniqueName } from "./support/grpc-client.js";

/** Slack over FIGURES_MAX_AGE_MS for the last read's round trip on a busy machine. */
const SLACK_MS = 1_000;

let one: TestBroker;
let other: TestBroker;

beforeAll(async () => {
  [one, other] = await Promise.all([startTestBroker(), startTestBroker()]);
});

afterAll(async () => {
  await Promise.all([one?.close(), other?.close()]);
});

const activeCount = async (client: SessionbusClient, queue: string) =>
  (await client.getQueue(queue)).runtimeInfo?.activeMessageCount;

describe("runtime figures", () => {
  it("count a send through the same broker at once, also right after a read", async () => {
    const queue = uniqueName("figures-own");
    await one.client.createQueue(queue);
    expect(await activeCount(one.client, queue)).toBe("0");
    await one.client.send(queue, [{ body: Buffer.from("a") }, { body: Buffer.from("b") }]);
    expect(await activeCount(one.client, queue)).toBe("2");
    expect(await activeCount(one.client, queue)).toBe("2");
  });

  it("count a send through another broker within FIGURES_MAX_AGE_MS", async () => {
    const queue = uniqueName("figures-other");
    await one.client.createQueue(queue);
    // The other broker reads (and keeps) the figures of the empty queue.
    expect(await activeCount(other.client, queue)).toBe("0");
    await one.client.send(queue, [{ body: Buffer.from("a") }, { body: Buffer.from("b") }]);
    const sentAt = performance.now();
    let seen = await activeCount(other.client, queue);
    while (seen !== "2" && performance.now() - sentAt < FIGURES_MAX_AGE_MS + SLACK_MS) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      seen = await activeCount(other.client, queue);
    }
    expect(seen).toBe("2");
    expect(performance.now() - sentAt).toBeLessThan(FIGURES_MAX_AGE_MS + SLACK_MS);
  });
});
