/**
 * Administration of topics, subscriptions and rules through the gRPC API: create, read,
 * list, update, delete, the runtime figures, and bad rules refused with the position of the
 * error and nothing stored.
 */
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import { bodyText, failure, seconds, uniqueName } from "./support/grpc-client.js";
import { startTopicBroker } from "./support/topic-broker.js";
import type { TopicClient } from "./support/topic-client.js";

let client: TopicClient;
brokerPerFile(startTopicBroker, (started) => {
  client = started.client;
});

describe("topics", () => {
  it("creates, reads, lists, updates and deletes a topic", async () => {
    const name = uniqueName("Topic-Admin");
    const created = await client.createTopic(name, {
      requiresDuplicateDetection: true,
      duplicateDetectionWindow: seconds(30),
    });
    expect(created.name).toBe(name);
    expect(created.properties).toMatchObject({
      requiresDuplicateDetection: true,
      duplicateDetectionWindow: { seconds: "30" },
      maxMessageSizeBytes: String(256 * 1024),
    });
    expect(created.subscriptionCount).toBe(0);
    // Paths match case-insensitively; the name is kept as first written.
    expect((await client.getTopic(name.toLowerCase())).name).toBe(name);
    const listed = await client.listTopics(1000);
    expect(listed.topics.map((t) => t.name)).toContain(name);

    const updated = await client.unary<{ topic: { properties: { defaultMessageTtl: unknown } } }>(
      "AdminService",
      "UpdateTopic",
      { name, properties: { defaultMessageTtl: seconds(90) } },
    );
    expect(updated.topic.properties.defaultMessageTtl).toMatchObject({ seconds: "90" });

    await client.deleteTopic(name);
    expect(await failure(client.getTopic(name))).toMatchObject({
      codeName: "NOT_FOUND",
      reason: "ENTITY_NOT_FOUND",
    });
  });

  it("shares the name space with queues and keeps them apart", async () => {
    const name = uniqueName("shared");
    await client.createTopic(name);
    expect(await failure(client.createQueue(name))).toMatchObject({
      codeName: "ALREADY_EXISTS",
      reason: "ENTITY_ALREADY_EXISTS",
    });
    expect(await failure(client.unary("AdminService", "GetQueue", { name }))).toMatchObject({
      codeName: "NOT_FOUND",
    });
    const queues = await client.unary<{ queues: { name: string }[] }>(
      "AdminService",
      "ListQueues",
      { pageSize: 1000 },
    );
    expect(queues.queues.map((q) => q.name)).not.toContain(name);
    const bad = await failure(client.createTopic(`${name}/subscriptions/x`));
    expect(bad).toMatchObject({ codeName: "INVALID_ARGUMENT", field: "name" });
  });
});

describe("subscriptions", () => {
  it("creates, reads, lists, updates and deletes subscriptions, with figures", async () => {
    const topic = uniqueName("subs");
    await client.createTopic(topic);
    const created = await client.createSubscription(topic, "Audit", {
      requiresSession: true,
      lockDuration: seconds(30),
      maxDeliveryCount: 3,
    });
    expect(created).toMatchObject({
      topicName: topic,
      name: "Audit",
      properties: { requiresSession: true, lockDuration: { seconds: "30" }, maxDeliveryCount: 3 },
    });
    await client.createSubscription(topic, "billing");
    expect(await failure(client.createSubscription(topic, "audit"))).toMatchObject({
      codeName: "ALREADY_EXISTS",
      reason: "ENTITY_ALREADY_EXISTS",
    });
    const listed = await client.listSubscriptions(topic);
    expect(listed.subscriptions.map((s) => s.name)).toEqual(["Audit", "billing"]);
    const paged = await client.listSubscriptions(topic, 1);
    expect(paged.subscriptions.map((s) => s.name)).toEqual(["Audit"]);
    const rest = await client.listSubscriptions(topic, 1, paged.nextPageToken);
    expect(rest.subscriptions.map((s) => s.name)).toEqual(["billing"]);
    expect(rest.nextPageToken).toBe("");

    await client.send(topic, [
      { body: Buffer.from("one"), sessionId: "a" },
      { body: Buffer.from("two"), sessionId: "a" },
    ]);
    await client.peekUntilHolding(`${topic}/subscriptions/billing`, 2);
    await client.peekUntilHolding(`${topic}/subscriptions/audit`, 2);
    const billing = await client.getSubscription(topic, "billing");
    expect(billing.runtimeInfo.activeMessageCount).toBe("2");
    const summed = await client.getTopic(topic);
    expect(summed.subscriptionCount).toBe(2);
    expect(summed.runtimeInfo.activeMessageCount).toBe("4");

    const changed = await client.unary<{
      subscription: { properties: { maxDeliveryCount: number } };
    }>("AdminService", "UpdateSubscription", {
      topicName: topic,
      name: "audit",
      properties: { maxDeliveryCount: 7 },
    });
    expect(changed.subscription.properties.maxDeliveryCount).toBe(7);
    const fixed = await failure(
      client.unary("AdminService", "UpdateSubscription", {
        topicName: topic,
        name: "audit",
        properties: { requiresSession: false },
      }),
    );
    expect(fixed).toMatchObject({
      codeName: "INVALID_ARGUMENT",
      field: "properties.requires_session",
    });

    await client.deleteSubscription(topic, "billing");
    expect(await failure(client.peek(`${topic}/subscriptions/billing`))).toMatchObject({
      codeName: "NOT_FOUND",
    });
    // The remaining subscription still gets new messages.
    await client.send(topic, [{ body: Buffer.from("three"), sessionId: "a" }]);
    const audit = await client.peekUntilHolding(`${topic}/subscriptions/audit`, 3);
    expect(audit.map(bodyText)).toEqual(["one", "two", "three"]);

    await client.deleteTopic(topic);
    expect(await failure(client.getSubscription(topic, "audit"))).toMatchObject({
      codeName: "NOT_FOUND",
    });
    expect(await failure(client.peek(`${topic}/subscriptions/audit`))).toMatchObject({
      codeName: "NOT_FOUND",
    });
  });

  it("refuses bad names and unknown topics", async () => {
    const topic = uniqueName("subnames");
    await client.createTopic(topic);
    expect(await failure(client.createSubscription(topic, "a/b"))).toMatchObject({
      codeName: "INVALID_ARGUMENT",
      field: "name",
    });
    expect(await failure(client.createSubscription(topic, "x".repeat(51)))).toMatchObject({
      codeName: "INVALID_ARGUMENT",
      field: "name",
    });
    expect(await failure(client.createSubscription(uniqueName("none"), "s"))).toMatchObject({
      codeName: "NOT_FOUND",
      reason: "ENTITY_NOT_FOUND",
    });
  });
});

describe("rules", () => {
  it("adds, lists and deletes rules, which apply to the next sends", async () => {
    const topic = uniqueName("rules");
    await client.createTopic(topic);
    await client.createSubscription(topic, "picky");
    const path = `${topic}/subscriptions/picky`;
    expect((await client.listRules(topic, "picky")).map((r) => r.name)).toEqual(["$Default"]);

    await client.deleteRule(topic, "picky", "$Default");
    await client.send(topic, [{ body: Buffer.from("dropped"), subject: "red" }]);
    await client.createRule(topic, "picky", {
      name: "reds",
      correlationFilter: { subject: "red" },
    });
    await client.createRule(topic, "picky", { name: "never", falseFilter: {} });
    const rules = await client.listRules(topic, "picky");
    expect(rules.map((r) => [r.name, r.filter])).toEqual([
      ["reds", "correlationFilter"],
      ["never", "falseFilter"],
    ]);
    expect(rules[0]?.correlationFilter?.subject).toBe("red");
    expect(
      await failure(client.createRule(topic, "picky", { name: "REDS", trueFilter: {} })),
    ).toMatchObject({ codeName: "ALREADY_EXISTS" });
    expect(await failure(client.deleteRule(topic, "picky", "nope"))).toMatchObject({
      codeName: "NOT_FOUND",
    });

    await client.send(topic, [
      { body: Buffer.from("blue"), subject: "blue" },
      { body: Buffer.from("red"), subject: "red" },
    ]);
    const held = await client.peekUntilHolding(path, 1);
    expect(held.map(bodyText)).toEqual(["red"]);
  });

  it("refuses bad rules with the position of the error, storing nothing", async () => {
    const topic = uniqueName("badrules");
    await client.createTopic(topic);
    await client.createSubscription(topic, "s");
    const cases: { expression: string; position: number }[] = [
      { expression: "color = ", position: 9 },
      { expression: "color = 'red' AND AND x = 1", position: 19 },
      { expression: "foo(1) = 2", position: 1 },
      { expression: `x = '${"y".repeat(1019)}'`, position: 1025 },
    ];
    expect(cases[3]?.expression.length).toBe(1025);
    for (const { expression, position } of cases) {
      const refused = await failure(
        client.createRule(topic, "s", { name: "bad", sqlFilter: { expression } }),
      );
      expect(refused, expression).toMatchObject({
        codeName: "INVALID_ARGUMENT",
        reason: "INVALID_ARGUMENT",
        field: "rule.sql_filter.expression",
        position,
      });
      expect(refused.message).toContain(`position ${position}`);
    }
    expect((await client.listRules(topic, "s")).map((r) => r.name)).toEqual(["$Default"]);

    const withBadRule = await failure(
      client.createSubscription(topic, "never", {}, { name: "r", sqlFilter: { expression: "(" } }),
    );
    expect(withBadRule).toMatchObject({ codeName: "INVALID_ARGUMENT" });
    expect(await failure(client.getSubscription(topic, "never"))).toMatchObject({
      codeName: "NOT_FOUND",
    });
    const noFilter = await failure(client.createRule(topic, "s", { name: "empty" }));
    expect(noFilter).toMatchObject({ codeName: "INVALID_ARGUMENT" });
  });
});
