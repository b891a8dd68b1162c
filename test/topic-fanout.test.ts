/**
 * Topics through the gRPC API: a message sent once reaches every subscription whose rules
 * match it (JetStream copies it), session subscriptions keep each session in order, and a
 * session-less message matching a session subscription is dead-lettered there only.
 */
import { setTimeout as delay } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import { bodyText, failure, type MessageInput, uniqueName } from "./support/grpc-client.js";
import { startTopicBroker } from "./support/topic-broker.js";
import type { TopicClient } from "./support/topic-client.js";

let client: TopicClient;
const streams = brokerPerFile(startTopicBroker, (started) => {
  client = started.client;
});

/** The mixed traffic of the acceptance test: what each message carries. */
interface Traffic {
  body: string;
  kind: "order" | "event";
  priority: number;
  label: string;
  sessionId: string | undefined;
}

function traffic(count: number): Traffic[] {
  return Array.from({ length: count }, (_, i) => ({
    body: `m${i}`,
    kind: i % 2 === 0 ? "order" : "event",
    priority: i % 10,
    label: i % 3 === 0 ? "audit" : "info",
    // Every 25th message (from the 9th) has no session: half of them are orders.
    sessionId: i % 25 === 8 ? undefined : `s${i % 20}`,
  }));
}

function toMessage(t: Traffic): MessageInput {
  return {
    body: Buffer.from(t.body),
    subject: t.label,
    ...(t.sessionId === undefined ? {} : { sessionId: t.sessionId }),
    applicationProperties: {
      kind: { stringValue: t.kind },
      priority: { intValue: t.priority },
    },
  };
}

describe("fan-out from a topic to its subscriptions", () => {
  it("stores in each subscription exactly what its rule matches, sessions in order", async () => {
    const topic = uniqueName("fanout");
    await client.createTopic(topic);
    await client.createSubscription(
      topic,
      "orders",
      { requiresSession: true },
      {
        name: "orders-only",
        correlationFilter: { applicationProperties: { kind: { stringValue: "order" } } },
      },
    );
    await client.createSubscription(
      topic,
      "audit",
      {},
      { name: "audit-high", sqlFilter: { expression: "sys.Label = 'audit' AND priority >= 5" } },
    );
    await client.createSubscription(topic, "all");

    const sent = traffic(1000);
    for (let i = 0; i < sent.length; i += 100) {
      const results = await client.send(topic, sent.slice(i, i + 100).map(toMessage));
      expect(results).toHaveLength(100);
    }

    const allBodies = sent.map((t) => t.body);
    const auditBodies = sent
      .filter((t) => t.label === "audit" && t.priority >= 5)
      .map((t) => t.body);
    const orders = sent.filter((t) => t.kind === "order" && t.sessionId !== undefined);
    const orphanOrders = sent.filter((t) => t.kind === "order" && t.sessionId === undefined);
    expect(orphanOrders.length).toBeGreaterThan(0);

    const all = await client.peekUntilHolding(`${topic}/subscriptions/all`, allBodies.length);
    expect(all.map(bodyText)).toEqual(allBodies);
    const audit = await client.peekUntilHolding(`${topic}/subscriptions/audit`, auditBodies.length);
    expect(audit.map(bodyText)).toEqual(auditBodies);
    const ordersPath = `${topic}/subscriptions/orders`;
    const orderCopies = await client.peekUntilHolding(ordersPath, orders.length);
    expect(orderCopies.map(bodyText)).toEqual(orders.map((t) => t.body));

    // Each subscription numbers its own copies: 1, 2, 3, ...
    expect(audit.map((m) => Number(m.sequenceNumber))).toEqual(auditBodies.map((_, i) => i + 1));

    // The session subscription: every session, accepted next, in the order sent.
    const expectedBySession = new Map<string, string[]>();
    for (const t of orders) {
      const list = expectedBySession.get(t.sessionId as string) ?? [];
      list.push(t.body);
      expectedBySession.set(t.sessionId as string, list);
    }
    const receivedBySession = new Map<string, string[]>();
    for (;;) {
      const lock = await client.acceptSession(ordersPath, undefined, 1_000);
      if (!lock) break;
      const expected = expectedBySession.get(lock.sessionId) ?? [];
      const stream = client.receiveStream({
        entityPath: ordersPath,
        session: lock,
        prefetch: 50,
        receiveMode: "RECEIVE_MODE_RECEIVE_AND_DELETE",
      });
      streams.push(stream);
      const messages = await stream.take(expected.length);
      receivedBySession.set(lock.sessionId, messages.map(bodyText));
      stream.cancel();
      await client.closeSession(ordersPath, lock);
    }
    expect(Object.fromEntries(receivedBySession)).toEqual(Object.fromEntries(expectedBySession));

    // Orders without a session: dead-lettered in "orders", delivered normally by "all".
    const dead = await client.peekUntilHolding(
      `${ordersPath}/$deadletterqueue`,
      orphanOrders.length,
    );
    expect(dead.map(bodyText)).toEqual(orphanOrders.map((t) => t.body));
    for (const message of dead) {
      expect(message.deadLetterReason).toBe("Session id is null.");
      expect(message.deadLetterSource).toBe(ordersPath);
      expect(message.message?.sessionId).toBeUndefined();
    }
    expect(allBodies).toEqual(expect.arrayContaining(dead.map(bodyText)));
    const auditDead = await client.peekAll(`${topic}/subscriptions/audit/$deadletterqueue`);
    expect(auditDead).toEqual([]);
  }, 120_000);

  it("dead-letters a session-less message only where sessions are required", async () => {
    const topic = uniqueName("nullsession");
    await client.createTopic(topic);
    await client.createSubscription(topic, "sessions", { requiresSession: true });
    await client.createSubscription(topic, "plain");
    const [result] = await client.send(topic, [{ body: Buffer.from("no session") }]);
    expect(result?.duplicate).toBe(false);

    const dead = await client.peekUntilHolding(
      `${topic}/subscriptions/sessions/$deadletterqueue`,
      1,
    );
    expect(dead.map(bodyText)).toEqual(["no session"]);
    expect(dead[0]?.deadLetterReason).toBe("Session id is null.");
    const plain = await client.peekUntilHolding(`${topic}/subscriptions/plain`, 1);
    expect(plain.map(bodyText)).toEqual(["no session"]);
    expect(await client.peekAll(`${topic}/subscriptions/sessions`)).toEqual([]);
    // The session subscription is not blocked: the next message with a session gets through.
    await client.send(topic, [{ body: Buffer.from("with session"), sessionId: "a" }]);
    const lock = await client.acceptSession(`${topic}/subscriptions/sessions`, undefined, 10_000);
    expect(lock?.sessionId).toBe("a");
  });

  it("gives a subscription only the messages sent after it was created", async () => {
    const topic = uniqueName("latecomer");
    await client.createTopic(topic);
    await client.createSubscription(topic, "early");
    await client.send(topic, [{ body: Buffer.from("before") }]);
    await client.createSubscription(topic, "late");
    await client.send(topic, [{ body: Buffer.from("after") }]);
    const early = await client.peekUntilHolding(`${topic}/subscriptions/early`, 2);
    expect(early.map(bodyText)).toEqual(["before", "after"]);
    const late = await client.peekUntilHolding(`${topic}/subscriptions/late`, 1);
    expect(late.map(bodyText)).toEqual(["after"]);
  });

  it("sends a scheduled topic message to the subscriptions at its time; a cancelled one never", async () => {
    const topic = uniqueName("scheduled");
    await client.createTopic(topic);
    await client.createSubscription(topic, "sub");
    const dueAt = Date.now() + 2_000;
    const at = { seconds: String(Math.floor(dueAt / 1000)), nanos: (dueAt % 1000) * 1e6 };
    const { sequenceNumbers } = await client.unary<{ sequenceNumbers: string[] }>(
      "MessagingService",
      "ScheduleMessages",
      {
        entityPath: topic,
        messages: [{ body: Buffer.from("kept") }, { body: Buffer.from("cancelled") }],
        scheduledEnqueueTime: at,
      },
    );
    expect(sequenceNumbers).toHaveLength(2);
    await client.unary("MessagingService", "CancelScheduledMessages", {
      entityPath: topic,
      sequenceNumbers: [sequenceNumbers[1]],
    });
    expect((await client.getTopic(topic)).runtimeInfo.scheduledMessageCount).toBe("1");
    expect(await client.peekAll(`${topic}/subscriptions/sub`)).toEqual([]);
    const stream = client.receiveStream({ entityPath: `${topic}/subscriptions/sub`, prefetch: 10 });
    streams.push(stream);
    const [arrived] = await stream.take(1, 20_000);
    expect(Date.now()).toBeGreaterThanOrEqual(dueAt);
    expect(arrived && bodyText(arrived)).toBe("kept");
    await client.complete(`${topic}/subscriptions/sub`, undefined, arrived?.lockToken ?? "");
    // The cancelled one was due at the same instant: by now it would have been copied too.
    expect(await client.peekAll(`${topic}/subscriptions/sub`)).toEqual([]);
    expect((await client.getTopic(topic)).runtimeInfo.scheduledMessageCount).toBe("0");
  });

  it("settles a subscription's copies like a queue's: defer, dead-letter, abandon, in a session", async () => {
    const topic = uniqueName("settle");
    await client.createTopic(topic);
    await client.createSubscription(topic, "work", { requiresSession: true, maxDeliveryCount: 5 });
    const path = `${topic}/subscriptions/work`;
    await client.send(
      topic,
      ["one", "two", "three"].map((body) => ({ body: Buffer.from(body), sessionId: "job" })),
    );
    await client.peekUntilHolding(path, 3);
    const lock = await client.acceptNamed(path, "job");
    const stream = client.receiveStream({ entityPath: path, session: lock, prefetch: 1 });
    streams.push(stream);

    const one = await stream.next();
    expect(bodyText(one)).toBe("one");
    await client.defer(path, lock, one.lockToken);
    const two = await stream.next();
    await client.abandon(path, lock, two.lockToken);
    await stream.untilRecalled();
    const again = await stream.next();
    expect([bodyText(again), again.deliveryCount]).toEqual(["two", 2]);
    await client.settle({
      entityPath: path,
      session: lock,
      lockTokens: [again.lockToken],
      disposition: "DISPOSITION_DEAD_LETTER",
      deadLetterReason: "NotNeeded",
    });
    const three = await stream.next();
    expect(bodyText(three)).toBe("three");
    await client.complete(path, lock, three.lockToken);

    const [deferred] = await client.receiveDeferred(path, [one.sequenceNumber], lock);
    expect(deferred && bodyText(deferred)).toBe("one");
    await client.complete(path, lock, deferred?.lockToken ?? "");
    await client.setSessionState(path, lock, Buffer.from("done"));
    await client.closeSession(path, lock);

    const dead = await client.peekAll(`${path}/$deadletterqueue`);
    expect(dead.map((m) => [bodyText(m), m.deadLetterReason, m.message?.sessionId])).toEqual([
      ["two", "NotNeeded", "job"],
    ]);
    expect(await client.peekAll(path)).toEqual([]);
    const { sessions } = await client.listAllSessions(path);
    expect(
      sessions.map((info) => [info.sessionId, info.messageCount, info.stateSizeBytes]),
    ).toEqual([["job", "0", "4"]]);
  });

  it("gives every subscription a message_id sent again after the topic's duplicate window, none inside it", async () => {
    const windowMs = 20_000; // the smallest window semantics §1 allows
    const topic = uniqueName("dupwindow");
    await client.createTopic(topic, {
      requiresDuplicateDetection: true,
      duplicateDetectionWindow: { seconds: String(windowMs / 1000) },
    });
    await client.createSubscription(topic, "plain");
    await client.createSubscription(topic, "sessions", { requiresSession: true });
    const plain = `${topic}/subscriptions/plain`;
    const sessions = `${topic}/subscriptions/sessions`;
    const sendX = async (body: string) => {
      const [result] = await client.send(topic, [
        { messageId: "X", sessionId: "s1", body: Buffer.from(body) },
      ]);
      return result;
    };

    const first = await sendX("first");
    const windowEnds = Date.now() + windowMs;
    expect(first?.duplicate).toBe(false);
    // The plain subscription's copy is received and deleted (its stream is empty again);
    // the session subscription's copy stays.
    const receiver = client.receiveStream({
      entityPath: plain,
      receiveMode: "RECEIVE_MODE_RECEIVE_AND_DELETE",
    });
    streams.push(receiver);
    expect(bodyText(await receiver.next(15_000))).toBe("first");
    expect((await client.peekUntilHolding(sessions, 1)).map(bodyText)).toEqual(["first"]);

    // Inside the window: a duplicate, reported with the kept message's sequence number.
    const inside = await sendX("inside");
    expect(inside).toMatchObject({ duplicate: true, sequenceNumber: first?.sequenceNumber });

    // After it (plus a second for nats-server's purge timer): a new message everywhere.
    await delay(windowEnds + 1_000 - Date.now());
    const after = await sendX("after");
    expect(after?.duplicate).toBe(false);
    expect(BigInt(after?.sequenceNumber ?? 0)).toBeGreaterThan(BigInt(first?.sequenceNumber ?? 0));
    expect(bodyText(await receiver.next(10_000))).toBe("after");
    const held = await client.peekUntilHolding(sessions, 2);
    expect(held.map(bodyText)).toEqual(["first", "after"]);
    // The duplicate reached no subscription.
    expect(await client.peekAll(plain)).toEqual([]);
  }, 60_000);

  it("keeps the first of two messages with one message_id in a batch to a topic", async () => {
    const topic = uniqueName("dupbatch");
    await client.createTopic(topic, { requiresDuplicateDetection: true });
    await client.createSubscription(topic, "sub");
    const results = await client.send(topic, [
      { messageId: "a", body: Buffer.from("a1") },
      { messageId: "b", body: Buffer.from("b1") },
      { messageId: "a", body: Buffer.from("a2") },
    ]);
    expect(results.map((r) => [r.messageId, r.duplicate])).toEqual([
      ["a", false],
      ["b", false],
      ["a", true],
    ]);
    expect(results[2]?.sequenceNumber).toBe(results[0]?.sequenceNumber);
    const [again] = await client.send(topic, [{ messageId: "b", body: Buffer.from("b2") }]);
    expect(again).toMatchObject({ duplicate: true, sequenceNumber: results[1]?.sequenceNumber });
    const held = await client.peekUntilHolding(`${topic}/subscriptions/sub`, 2);
    expect(held.map(bodyText)).toEqual(["a1", "b1"]);
  });

  it("refuses to receive, peek or accept sessions on the topic itself", async () => {
    const topic = uniqueName("notreceivable");
    await client.createTopic(topic);
    const peeked = await failure(client.peek(topic));
    expect(peeked).toMatchObject({ codeName: "INVALID_ARGUMENT", reason: "INVALID_ARGUMENT" });
    expect(peeked.message).toMatch(/topic/);
    const accepted = await failure(client.acceptSession(topic, "x"));
    expect(accepted).toMatchObject({ codeName: "INVALID_ARGUMENT", reason: "INVALID_ARGUMENT" });
    const dead = await failure(client.peek(`${topic}/$deadletterqueue`));
    expect(dead).toMatchObject({ codeName: "NOT_FOUND", reason: "ENTITY_NOT_FOUND" });
  });
});
