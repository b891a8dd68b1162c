/**
 * The client SDK (src/client) against an in-process broker on the test run's nats-server:
 * sending and receiving, sessions in order, the recall after an abandon, session state,
 * typed errors, request–reply, cancellation, topics with subscriptions and rules, and
 * shared access authorization (connection strings, tokens, rights).
 */
import { randomUUID } from "node:crypto";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../gen/ts/sessionbus/v1/admin_service_pb.js";
import { AccessRight } from "../gen/ts/sessionbus/v1/authorization_pb.js";
import type { RunningSessionbus } from "../src/app.js";
import {
  createSasToken,
  createSessionBusClient,
  deadLetterQueuePath,
  EntityAlreadyExistsError,
  EntityNotFoundError,
  InvalidArgumentError,
  MessageLockLostError,
  NotSessionEntityError,
  PermissionDeniedError,
  type ReceivedMessage,
  type SessionBusClient,
  SessionBusError,
  SessionCannotBeLockedError,
  SessionIdRequiredError,
  SessionLockLostError,
  type SessionReceiver,
  sasInterceptor,
  subscriptionPath,
  UnauthenticatedError,
} from "../src/client/index.js";
import { startInProcessBroker } from "./support/grpc-broker.js";
import { ROOT_RULE, TEST_ROOT_KEY, testConnectionString } from "./support/test-credentials.js";

let broker: RunningSessionbus;
/** The root rule's connection string: Manage, Send and Listen on the whole namespace. */
let connectionString: string;
let client: SessionBusClient;
/** Another connection: "another receiver". */
let other: SessionBusClient;
const created: string[] = [];
const createdTopics: string[] = [];

beforeAll(async () => {
  broker = await startInProcessBroker();
  connectionString = testConnectionString(broker.url);
  client = createSessionBusClient({ connectionString });
  other = createSessionBusClient({ connectionString });
});

afterAll(async () => {
  // Close the clients first (the request–reply session among them), then remove the queues.
  await client?.close();
  await other?.close();
  if (broker) {
    const admin = createSessionBusClient({ connectionString });
    for (const name of created) await admin.deleteQueue(name).catch(() => undefined);
    for (const name of createdTopics) await admin.deleteTopic(name).catch(() => undefined);
    await admin.close();
    await broker.close();
  }
});

async function topic(prefix: string): Promise<string> {
  const name = `client-${prefix}-${randomUUID().slice(0, 8)}`;
  await client.createTopic(name);
  createdTopics.push(name);
  return name;
}

async function queue(prefix: string, requiresSession = false): Promise<string> {
  const name = `client-${prefix}-${randomUUID().slice(0, 8)}`;
  await client.createQueue(name, { requiresSession });
  created.push(name);
  return name;
}

/** Fails after `ms` instead of hanging. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The next message, which must arrive within 10 s. */
async function next(receiver: { receiveMessage: SessionReceiver["receiveMessage"] }) {
  const message = await receiver.receiveMessage({ maxWaitMs: 10_000 });
  if (!message) throw new Error("no message within 10 s");
  return message;
}

async function sendToSession(q: string, sessionId: string, count: number): Promise<bigint[]> {
  const results = await client
    .sender(q)
    .sendBatch(
      Array.from({ length: count }, (_, i) => ({ sessionId, body: `${sessionId} ${i + 1}` })),
    );
  return results.map((r) => r.sequenceNumber);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail");
}

describe("queues without sessions", () => {
  it("round-trips messages with their properties through a sender and a receiver", async () => {
    const q = await queue("plain");
    const at = new Date("2024-05-06T07:08:09.010Z");
    const sent = await client.sender(q).send({
      body: "hello",
      messageId: "m-1",
      correlationId: "c-1",
      subject: "greeting",
      contentType: "text/plain",
      to: "someone",
      replyTo: "replies",
      timeToLiveMs: 60_000,
      applicationProperties: {
        text: "x",
        ratio: 1.5,
        count: 42n,
        flag: true,
        bytes: new Uint8Array([1, 2]),
        at,
      },
    });
    expect(sent).toMatchObject({ messageId: "m-1", duplicate: false });
    const batch = await client.sender(q).sendBatch([{ body: "two" }, { body: "three" }]);
    expect(batch.map((r) => r.sequenceNumber)).toEqual([
      sent.sequenceNumber + 1n,
      sent.sequenceNumber + 2n,
    ]);

    const receiver = client.receiver(q, { prefetch: 3 });
    const received: ReceivedMessage[] = [];
    for await (const message of receiver) {
      received.push(message);
      if (received.length === 3) break;
    }
    const [first, second, third] = received as [ReceivedMessage, ReceivedMessage, ReceivedMessage];
    expect(first).toMatchObject({
      text: "hello",
      messageId: "m-1",
      correlationId: "c-1",
      subject: "greeting",
      contentType: "text/plain",
      to: "someone",
      replyTo: "replies",
      timeToLiveMs: 60_000,
      sessionId: undefined,
      sequenceNumber: sent.sequenceNumber,
      deliveryCount: 1,
      state: "active",
      applicationProperties: { text: "x", ratio: 1.5, count: 42n, flag: true, at },
    });
    expect(first.applicationProperties.bytes).toEqual(new Uint8Array([1, 2]));
    expect(first.lockedUntil?.getTime()).toBeGreaterThan(Date.now());

    await receiver.complete(first);
    // A second settlement of the same delivery is refused with its reason.
    expect(await rejection(receiver.complete(first))).toMatchObject({
      reason: "MESSAGE_ALREADY_SETTLED",
      code: Code.FailedPrecondition,
    });
    // Abandon: the message comes again with its delivery count raised.
    await receiver.abandon(second);
    const again = await next(receiver);
    expect(again).toMatchObject({ text: "two", deliveryCount: 2 });
    const renewed = await receiver.renewLock(again);
    expect(renewed.getTime()).toBeGreaterThan(Date.now() + 50_000);
    await receiver.defer(again);
    const [deferred] = await receiver.receiveDeferred([again.sequenceNumber]);
    expect(deferred).toMatchObject({ text: "two", state: "deferred" });
    await receiver.complete(deferred as ReceivedMessage);
    await receiver.deadLetter(third, "Broken", "cannot parse");
    await receiver.close();

    const dlq = client.receiver(deadLetterQueuePath(q));
    const dead = await next(dlq);
    expect(dead).toMatchObject({
      text: "three",
      deadLetterReason: "Broken",
      deadLetterDescription: "cannot parse",
      deadLetterSource: q,
    });
    await dlq.complete(dead);
    await dlq.close();
    expect(await client.peek(q, { maxMessages: 10 })).toEqual([]);
  });

  it("lists queues page by page and updates their properties in milliseconds", async () => {
    const q = await queue("admin");
    const updated = await client.updateQueue(q, { lockDurationMs: 7_000, maxDeliveryCount: 3 });
    expect(updated.properties).toMatchObject({
      lockDurationMs: 7_000,
      maxDeliveryCount: 3,
      requiresSession: false,
      defaultMessageTtlMs: undefined,
    });
    const names: string[] = [];
    for await (const each of client.listQueues({ pageSize: 2 })) names.push(each.name);
    expect(names).toContain(q);
    expect((await client.getQueue(q)).runtimeInfo.activeMessageCount).toBe(0);
  });
});

describe("session receivers", () => {
  it("work through a Connect transport to the HTTP port, as in a browser", async () => {
    const q = await queue("connect", true);
    const overConnect = createSessionBusClient({
      connectionString,
      transport: createConnectTransport({ baseUrl: broker.httpUrl, httpVersion: "2" }),
    });
    try {
      await overConnect.sender(q).sendBatch([
        { sessionId: "c", body: "c 1" },
        { sessionId: "c", body: "c 2" },
      ]);
      const session = await overConnect.acceptSession(q, "c");
      const texts: string[] = [];
      for await (const message of session) {
        texts.push(message.text);
        await session.complete(message);
        if (texts.length === 2) break;
      }
      expect(texts).toEqual(["c 1", "c 2"]);
      await session.close();
      expect((await client.getQueue(q)).runtimeInfo.activeMessageCount).toBe(0);
    } finally {
      await overConnect.close();
    }
  });

  it("receive one session's messages in order; accept-next takes another session", async () => {
    const q = await queue("order", true);
    const sender = client.sender(q);
    for (let i = 1; i <= 5; i++) {
      await sender.sendBatch([
        { sessionId: "a", body: `a ${i}` },
        { sessionId: "b", body: `b ${i}` },
      ]);
    }
    const a = await client.acceptSession(q, "a");
    expect(a.sessionId).toBe("a");
    expect(a.lockedUntil.getTime()).toBeGreaterThan(Date.now());
    const texts: string[] = [];
    for await (const message of a) {
      texts.push(message.text);
      await a.complete(message);
      if (texts.length === 5) break;
    }
    expect(texts).toEqual(["a 1", "a 2", "a 3", "a 4", "a 5"]);
    expect(await a.receiveMessage({ maxWaitMs: 300 })).toBeUndefined();
    await a.close();

    const b = await client.acceptNextSession(q, { maxWaitMs: 10_000 });
    expect(b?.sessionId).toBe("b");
    const fromB = await (b as SessionReceiver).receiveMessages(5, { maxWaitMs: 10_000 });
    expect(fromB.length).toBeGreaterThan(0);
    expect(fromB.map((m) => m.text)).toEqual(
      ["b 1", "b 2", "b 3", "b 4", "b 5"].slice(0, fromB.length),
    );
    await b?.close();

    const sessions: string[] = [];
    for await (const info of client.listSessions(q, { pageSize: 1 })) {
      sessions.push(info.sessionId);
      expect(info.locked).toBe(false);
    }
    expect(sessions).toEqual(["b"]);
  });

  it("after an abandon under prefetch, yields the abandoned message next and drops the recalled ones", async () => {
    const q = await queue("recall", true);
    const sequences = await sendToSession(q, "s", 8);
    const session = await client.acceptSession(q, "s", { prefetch: 10 });
    const one = await next(session);
    const two = await next(session);
    await session.complete(one);
    await session.complete(two);
    const three = await next(session);
    expect(three).toMatchObject({ text: "s 3", deliveryCount: 1 });
    // 4..8 are read ahead by now or on their way; the abandon voids them.
    await session.abandon(three);

    const seen: ReceivedMessage[] = [];
    for (let i = 0; i < 6; i++) {
      const message = await next(session);
      seen.push(message);
      await session.complete(message);
    }
    expect(seen.map((m) => [m.text, m.deliveryCount])).toEqual([
      ["s 3", 2],
      ["s 4", 1],
      ["s 5", 1],
      ["s 6", 1],
      ["s 7", 1],
      ["s 8", 1],
    ]);
    expect(seen.map((m) => m.sequenceNumber)).toEqual(sequences.slice(2));
    expect(await session.receiveMessage({ maxWaitMs: 300 })).toBeUndefined();
    await session.close();
    expect(await client.peek(q, { maxMessages: 10 })).toEqual([]);
  });

  it("voids a message it handed out when another one is abandoned, and delivers both again", async () => {
    const q = await queue("recall-out", true);
    await sendToSession(q, "s", 3);
    const session = await client.acceptSession(q, "s", { prefetch: 10 });
    const first = await next(session);
    const second = await next(session);
    await session.abandon(first);
    // The second delivery was recalled: its token settles nothing.
    expect(await rejection(session.complete(second))).toBeInstanceOf(MessageLockLostError);
    const again = [await next(session), await next(session), await next(session)];
    expect(again.map((m) => [m.text, m.deliveryCount])).toEqual([
      ["s 1", 2],
      ["s 2", 1],
      ["s 3", 1],
    ]);
    for (const message of again) await session.complete(message);
    await session.close();
  });

  it("with prefetch 1, an abandoned message comes again at once (nothing else in flight)", async () => {
    const q = await queue("recall-one", true);
    await sendToSession(q, "s", 2);
    const session = await client.acceptSession(q, "s", { prefetch: 1 });
    const first = await next(session);
    await session.abandon(first);
    const again = await next(session);
    expect(again).toMatchObject({ text: "s 1", deliveryCount: 2 });
    await session.complete(again);
    expect(await next(session)).toMatchObject({ text: "s 2", deliveryCount: 1 });
    await session.close();
  });

  it("reads, replaces and clears the session state; the next holder sees it", async () => {
    const q = await queue("state", true);
    const session = await client.acceptSession(q, "with-state");
    expect(await session.getState()).toBeUndefined();
    await session.setState("step 1");
    expect(new TextDecoder().decode(await session.getState())).toBe("step 1");
    await session.setState(new Uint8Array([7, 8, 9]));
    await session.close();

    const next = await other.acceptSession(q, "with-state");
    expect(await next.getState()).toEqual(new Uint8Array([7, 8, 9]));
    const listed = [];
    for await (const info of client.listSessions(q)) listed.push(info);
    expect(listed).toMatchObject([{ sessionId: "with-state", locked: true, stateSizeBytes: 3 }]);
    await next.setState(undefined);
    expect(await next.getState()).toBeUndefined();
    await next.close();
  });
});

describe("errors", () => {
  it("are typed by reason, with the entity and session they are about", async () => {
    const missing = `client-missing-${randomUUID().slice(0, 8)}`;
    const notFound = await rejection(client.getQueue(missing));
    expect(notFound).toBeInstanceOf(EntityNotFoundError);
    expect(notFound).toBeInstanceOf(SessionBusError);
    expect(notFound).toMatchObject({
      name: "EntityNotFoundError",
      reason: "ENTITY_NOT_FOUND",
      code: Code.NotFound,
      entityPath: missing,
    });
    expect(await rejection(client.sender(missing).send({ body: "x" }))).toBeInstanceOf(
      EntityNotFoundError,
    );

    const q = await queue("errors", true);
    expect(await rejection(client.createQueue(q))).toBeInstanceOf(EntityAlreadyExistsError);
    expect(await rejection(client.sender(q).send({ body: "no session" }))).toBeInstanceOf(
      SessionIdRequiredError,
    );
    const plain = await queue("errors-plain");
    expect(await rejection(client.acceptSession(plain, "x"))).toBeInstanceOf(NotSessionEntityError);

    const held = await client.acceptSession(q, "held");
    const busy = await rejection(other.acceptSession(q, "held"));
    expect(busy).toBeInstanceOf(SessionCannotBeLockedError);
    expect(busy).toMatchObject({
      reason: "SESSION_CANNOT_BE_LOCKED",
      code: Code.Aborted,
      entityPath: q,
      sessionId: "held",
    });
    await held.close();
    // Calls under a released lock fail with SESSION_LOCK_LOST.
    expect(await rejection(held.getState())).toBeInstanceOf(SessionLockLostError);
  });
});

describe("request–reply", () => {
  it("gives each of 50 concurrent calls its own reply through a responder", async () => {
    const requests = await queue("requests");
    const replies = await queue("replies", true);
    const responderClient = createSessionBusClient({ connectionString });
    const handled: string[] = [];
    const responder = responderClient.createResponder(requests, (request) => {
      handled.push(request.text);
      return { body: `reply to ${request.text}`, subject: "reply" };
    });
    try {
      const calls = Array.from({ length: 50 }, (_, i) =>
        client.requestReply(requests, { body: `question ${i}` }, { replyQueue: replies }),
      );
      const answers = await within(Promise.all(calls), 30_000, "50 replies");
      answers.forEach((answer, i) => {
        expect(answer.text).toBe(`reply to question ${i}`);
        expect(answer.sessionId).toBe(client.instanceId);
        expect(answer.subject).toBe("reply");
      });
      expect(new Set(answers.map((a) => a.correlationId)).size).toBe(50);
      expect(handled).toHaveLength(50);
      // The requests were completed and the replies taken.
      expect(await client.peek(requests, { maxMessages: 100 })).toEqual([]);
      expect(await client.peek(replies, { maxMessages: 100 })).toEqual([]);
    } finally {
      await responder.close();
      await responderClient.close();
    }
  });
});

describe("cancellation", () => {
  it("an AbortSignal ends an accept-next wait at once, and the wait takes no session", async () => {
    const q = await queue("abort", true);
    const controller = new AbortController();
    const started = Date.now();
    const waiting = client.acceptNextSession(q, { maxWaitMs: 30_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    const error = await within(rejection(waiting), 5_000, "the aborted accept");
    expect(error).toMatchObject({ name: "AbortError" });
    expect(Date.now() - started).toBeLessThan(5_000);

    await sendToSession(q, "later", 1);
    const session = await within(
      other.acceptNextSession(q, { maxWaitMs: 10_000 }),
      10_000,
      "accept-next after the cancelled one",
    );
    expect(session?.sessionId).toBe("later");
    await session?.close();
  });
});

describe("topics, subscriptions and rules", () => {
  it("administers a topic and its subscriptions, with the figures summed over them", async () => {
    const name = `client-topic-${randomUUID().slice(0, 8)}`;
    const t = await client.createTopic(name, {
      requiresDuplicateDetection: true,
      duplicateDetectionWindowMs: 30_000,
    });
    createdTopics.push(name);
    expect(t).toMatchObject({
      name,
      subscriptionCount: 0,
      properties: {
        requiresDuplicateDetection: true,
        duplicateDetectionWindowMs: 30_000,
        defaultMessageTtlMs: undefined,
        maxMessageSizeBytes: 256 * 1024,
      },
    });
    const updated = await client.updateTopic(name, { defaultMessageTtlMs: 90_000 });
    expect(updated.properties.defaultMessageTtlMs).toBe(90_000);
    const topics: string[] = [];
    for await (const each of client.listTopics({ pageSize: 1 })) topics.push(each.name);
    expect(topics).toContain(name);
    expect(await rejection(client.createTopic(name))).toBeInstanceOf(EntityAlreadyExistsError);

    const audit = await client.createSubscription(name, "audit", {
      requiresSession: true,
      lockDurationMs: 30_000,
      maxDeliveryCount: 3,
    });
    expect(audit).toMatchObject({
      topicName: name,
      name: "audit",
      path: subscriptionPath(name, "audit"),
      properties: { requiresSession: true, lockDurationMs: 30_000, maxDeliveryCount: 3 },
    });
    await client.createSubscription(name, "billing");
    const changed = await client.updateSubscription(name, "billing", { maxDeliveryCount: 7 });
    expect(changed.properties.maxDeliveryCount).toBe(7);
    const names: string[] = [];
    for await (const each of client.listSubscriptions(name, { pageSize: 1 })) names.push(each.name);
    expect(names).toEqual(["audit", "billing"]);
    expect((await client.getTopic(name)).subscriptionCount).toBe(2);

    await client.deleteSubscription(name, "billing");
    expect(await rejection(client.getSubscription(name, "billing"))).toBeInstanceOf(
      EntityNotFoundError,
    );
    await client.deleteTopic(name);
    expect(await rejection(client.getTopic(name))).toBeInstanceOf(EntityNotFoundError);
  });

  it("a sender to the topic feeds a receiver of a subscription, through its rules", async () => {
    const t = await topic("fanout");
    await client.createSubscription(t, "all");
    const reds = await client.createSubscription(t, "reds", {
      rule: { name: "red", filter: { kind: "sql", expression: "sys.Label = 'red' AND size > 2" } },
    });
    expect(await client.listRules(t, "reds")).toMatchObject([
      { name: "red", filter: { kind: "sql", expression: "sys.Label = 'red' AND size > 2" } },
    ]);

    const sender = client.sender(t);
    await sender.sendBatch([
      { body: "small red", subject: "red", applicationProperties: { size: 1n } },
      { body: "big blue", subject: "blue", applicationProperties: { size: 5n } },
      { body: "big red", subject: "red", applicationProperties: { size: 5n } },
    ]);

    // Copies keep the send order, so the first copy in "reds" shows the others were filtered.
    const receiver = client.receiver(reds.path);
    const first = await next(receiver);
    expect(first).toMatchObject({ text: "big red", subject: "red", deliveryCount: 1 });
    await receiver.complete(first);
    const everything = client.receiver(subscriptionPath(t, "all"), { prefetch: 3 });
    const all: string[] = [];
    while (all.length < 3) {
      const m = await next(everything);
      all.push(m.text);
      await everything.complete(m);
    }
    expect(all).toEqual(["small red", "big blue", "big red"]);

    // Rules change what the next sends bring: a correlation rule on an application property.
    await client.deleteRule(t, "reds", "red");
    const added = await client.createRule(t, "reds", {
      name: "vip",
      filter: { kind: "correlation", applicationProperties: { tier: "gold" } },
    });
    expect(added).toMatchObject({
      name: "vip",
      filter: { kind: "correlation", applicationProperties: { tier: "gold" } },
    });
    expect((await client.listRules(t, "reds")).map((r) => r.name)).toEqual(["vip"]);
    await sender.sendBatch([
      { body: "red again", subject: "red", applicationProperties: { size: 9n } },
      { body: "gold", applicationProperties: { tier: "gold" } },
    ]);
    const second = await next(receiver);
    expect(second.text).toBe("gold");
    await receiver.complete(second);
    await receiver.close();
    await everything.close();
  });

  it("accept-next on a session subscription yields each session's messages in order", async () => {
    const t = await topic("sessions");
    const path = (await client.createSubscription(t, "orders", { requiresSession: true })).path;
    await client.sender(t).sendBatch([
      { sessionId: "alice", body: "alice 1" },
      { sessionId: "bob", body: "bob 1" },
      { sessionId: "alice", body: "alice 2" },
      { sessionId: "bob", body: "bob 2" },
    ]);
    const byCustomer = new Map<string, string[]>();
    for (let i = 0; i < 2; i++) {
      const session = await client.acceptNextSession(path, { maxWaitMs: 10_000 });
      if (!session) throw new Error("no session within 10 s");
      const texts: string[] = [];
      while (texts.length < 2) {
        const m = await next(session);
        texts.push(m.text);
        await session.complete(m);
      }
      byCustomer.set(session.sessionId, texts);
      await session.close();
    }
    expect(Object.fromEntries(byCustomer)).toEqual({
      alice: ["alice 1", "alice 2"],
      bob: ["bob 1", "bob 2"],
    });
    const sessions: string[] = [];
    for await (const info of client.listSessions(path)) sessions.push(info.sessionId);
    expect(sessions).toEqual([]);
  });

  it("a bad SQL rule fails with InvalidArgumentError naming the field and the position", async () => {
    const t = await topic("badrule");
    await client.createSubscription(t, "s");
    const refused = await rejection(
      client.createRule(t, "s", { name: "bad", filter: { kind: "sql", expression: "color = " } }),
    );
    expect(refused).toBeInstanceOf(InvalidArgumentError);
    expect(refused).toMatchObject({
      reason: "INVALID_ARGUMENT",
      code: Code.InvalidArgument,
      field: "rule.sql_filter.expression",
      position: 9,
    });
    // Errors that are not about a position carry none.
    const badName = await rejection(client.createSubscription(t, "a/b"));
    expect(badName).toMatchObject({ reason: "INVALID_ARGUMENT", position: undefined });
    expect((await client.listRules(t, "s")).map((r) => r.name)).toEqual(["$Default"]);
  });
});

describe("shared access authorization", () => {
  /** Rules this block made, deleted at its end. */
  const rules: { entityPath: string; name: string }[] = [];
  const rootAdmin = () =>
    createClient(
      AdminService,
      createConnectTransport({
        baseUrl: broker.httpUrl,
        httpVersion: "1.1",
        interceptors: [sasInterceptor(connectionString)],
      }),
    );

  /** A new rule with `rights` and the connection string of its primary key. */
  async function ruleConnectionString(
    rights: AccessRight[],
    entityPath = "",
  ): Promise<{ name: string; connectionString: string }> {
    const name = `sdk-${randomUUID().slice(0, 8)}`;
    const { rule } = await rootAdmin().createAuthorizationRule({ entityPath, name, rights });
    rules.push({ entityPath, name });
    const entity = entityPath === "" ? "" : `;EntityPath=${entityPath}`;
    return {
      name,
      connectionString: `Endpoint=sb://127.0.0.1:${broker.port}/;SharedAccessKeyName=${name};SharedAccessKey=${rule?.primaryKey}${entity};UseDevelopmentEmulator=true`,
    };
  }

  afterAll(async () => {
    const admin = rootAdmin();
    for (const rule of rules) await admin.deleteAuthorizationRule(rule).catch(() => undefined);
  });

  it("takes the broker's address from the connection string", () => {
    expect(client.url).toBe(broker.url);
  });

  it("refuses a client without a token: UnauthenticatedError, TOKEN_MISSING", async () => {
    const anonymous = createSessionBusClient({ url: broker.url });
    try {
      const error = await rejection(anonymous.getQueue("anything"));
      expect(error).toBeInstanceOf(UnauthenticatedError);
      expect(error).toMatchObject({ reason: "TOKEN_MISSING", code: Code.Unauthenticated });
      // Streams too: a receiver fails on its first receive.
      const receiveError = await rejection(
        anonymous.receiver("anything").receiveMessage({ maxWaitMs: 1_000 }),
      );
      expect(receiveError).toMatchObject({ reason: "TOKEN_MISSING" });
    } finally {
      await anonymous.close();
    }
  });

  it("refuses an expired token (TOKEN_EXPIRED) and a wrong key (TOKEN_INVALID)", async () => {
    const expired = createSessionBusClient({
      url: broker.url,
      sharedAccessSignature: createSasToken({
        resourceUri: `sb://127.0.0.1:${broker.port}/`,
        keyName: ROOT_RULE,
        key: TEST_ROOT_KEY,
        expiresAtSeconds: Math.floor(Date.now() / 1000) - 60,
      }),
    });
    const wrongKey = createSessionBusClient({
      connectionString: connectionString.replace(
        TEST_ROOT_KEY,
        "d3Jvbmcta2V5LWQzSnZibWN0YTJWNUxRPT0=",
      ),
    });
    try {
      const expiredError = await rejection(expired.getQueue("anything"));
      expect(expiredError).toBeInstanceOf(UnauthenticatedError);
      expect(expiredError).toMatchObject({ reason: "TOKEN_EXPIRED" });
      const invalidError = await rejection(wrongKey.getQueue("anything"));
      expect(invalidError).toBeInstanceOf(UnauthenticatedError);
      expect(invalidError).toMatchObject({ reason: "TOKEN_INVALID" });
    } finally {
      await Promise.all([expired.close(), wrongKey.close()]);
    }
  });

  it("calls with tokens a function mints, as a token service would", async () => {
    let minted = 0;
    const withMinter = createSessionBusClient({
      url: broker.url,
      sharedAccessSignature: async () => {
        minted++;
        return createSasToken({
          resourceUri: `sb://127.0.0.1:${broker.port}/`,
          keyName: ROOT_RULE,
          key: TEST_ROOT_KEY,
          expiresAtSeconds: Math.floor(Date.now() / 1000) + 3600,
        });
      },
    });
    try {
      const q = await queue("minted");
      await withMinter.sender(q).send({ body: "one" });
      await withMinter.sender(q).send({ body: "two" });
      const receiver = withMinter.receiver(q);
      expect((await next(receiver)).text).toBe("one");
      await receiver.close();
      expect(minted).toBe(1);
    } finally {
      await withMinter.close();
    }
  });

  it("a Send-only rule sends; receiving or managing fails with PermissionDeniedError naming the right", async () => {
    const q = await queue("rights");
    const sendOnly = await ruleConnectionString([AccessRight.SEND]);
    const sender = createSessionBusClient({ connectionString: sendOnly.connectionString });
    try {
      await sender.sender(q).send({ body: "allowed" });
      const listenError = await rejection(sender.receiver(q).receiveMessage({ maxWaitMs: 1_000 }));
      expect(listenError).toBeInstanceOf(PermissionDeniedError);
      expect(listenError).toMatchObject({
        reason: "MISSING_RIGHT",
        code: Code.PermissionDenied,
        missingRight: "Listen",
      });
      const manageError = await rejection(sender.deleteQueue(q));
      expect(manageError).toBeInstanceOf(PermissionDeniedError);
      expect(manageError).toMatchObject({ missingRight: "Manage", entityPath: q });
    } finally {
      await sender.close();
    }
    expect((await client.getQueue(q)).runtimeInfo.activeMessageCount).toBe(1);
  });

  it("a rule on one queue, with EntityPath, reaches that queue and its dead-letter queue only", async () => {
    const q = await queue("entity-rule");
    const otherQueue = await queue("entity-rule-other");
    const onQueue = await ruleConnectionString([AccessRight.SEND, AccessRight.LISTEN], q);
    const scoped = createSessionBusClient({ connectionString: onQueue.connectionString });
    try {
      await scoped.sender(q).send({ body: "to be dead-lettered" });
      const receiver = scoped.receiver(q);
      const message = await next(receiver);
      await receiver.deadLetter(message, "test");
      await receiver.close();
      const dlq = scoped.receiver(deadLetterQueuePath(q));
      expect((await next(dlq)).text).toBe("to be dead-lettered");
      await dlq.close();

      const elsewhere = await rejection(scoped.sender(otherQueue).send({ body: "no" }));
      expect(elsewhere).toBeInstanceOf(PermissionDeniedError);
      expect(elsewhere).toMatchObject({ missingRight: "Send", entityPath: otherQueue });
    } finally {
      await scoped.close();
    }
  });
});
