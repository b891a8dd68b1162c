/**
 * A LIKE rule whose pattern would make a backtracking matcher run for ages (issue 11, item 7)
 * is evaluated in time linear-ish in the property, so one Send cannot stall the broker. The
 * broker runs as its own process: a stalled event loop there shows up here as calls that
 * never answer (the client's deadline), not as a hung test runner.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { bodyText, uniqueName } from "./support/grpc-client.js";
import { TopicClient } from "./support/topic-client.js";

/** Twenty "%a" then "%b": on a string of a's, a backtracking matcher tries ~n^20 splits. */
const PATHOLOGICAL = `p LIKE '${"%a".repeat(20)}%b'`;

let broker: BrokerProcess;
let client: TopicClient;

beforeAll(async () => {
  broker = await startBrokerProcess({ natsUrl: inject("natsUrl") });
  // A stalled broker fails the calls within this bound rather than hanging the test.
  client = new TopicClient(broker.url, { deadlineMs: 15_000 });
});

afterAll(async () => {
  try {
    await client?.deleteCreatedQueues();
  } finally {
    client?.close();
    await broker?.stop();
  }
});

describe("a LIKE rule with many %", () => {
  it("routes 64- and 10,000-character properties and the broker keeps answering", async () => {
    const topic = uniqueName("like-many-percent");
    await client.createTopic(topic);
    await client.createSubscription(
      topic,
      "like",
      {},
      {
        name: "many-percent",
        sqlFilter: { expression: PATHOLOGICAL },
      },
    );
    await client.createSubscription(topic, "all");

    const bodies = ["a64", "a10000", "a64b"];
    await client.send(topic, [
      { body: Buffer.from("a64"), applicationProperties: { p: { stringValue: "a".repeat(64) } } },
    ]);
    await client.send(topic, [
      {
        body: Buffer.from("a10000"),
        applicationProperties: { p: { stringValue: "a".repeat(10_000) } },
      },
    ]);
    await client.send(topic, [
      {
        body: Buffer.from("a64b"),
        applicationProperties: { p: { stringValue: `${"a".repeat(64)}b` } },
      },
    ]);

    const all = await client.peekUntilHolding(`${topic}/subscriptions/all`, bodies.length);
    expect(all.map(bodyText)).toEqual(bodies);
    const matched = await client.peekUntilHolding(`${topic}/subscriptions/like`, 1);
    expect(matched.map(bodyText)).toEqual(["a64b"]);
  }, 60_000);
});
