/**
 * The length limits of semantics §8 through the gRPC API: "characters" are Unicode code
 * points everywhere (128 emoji are a valid session id, though 256 UTF-16 units), the
 * refusals say what was counted, and every RPC that names a session refuses a session id
 * over the limit with INVALID_ARGUMENT before asking the store anything (a long id once
 * made NATS time out: STORE_UNAVAILABLE after 5 s).
 */
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { beforeAll, describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import { type FrameError, FrameStream } from "./support/frame-stream.js";
import {
  bodyText,
  type ErrorReason,
  errorReason,
  failure,
  uniqueName,
} from "./support/grpc-client.js";
import { startSessionBroker } from "./support/session-broker.js";
import type { SessionClient, SessionRef, SessionSettleRequest } from "./support/session-client.js";

let client: SessionClient;
const streams = brokerPerFile(startSessionBroker, (started) => {
  client = started.client;
});

/** One code point, two UTF-16 units. */
const EMOJI = "😀";
const emoji = (count: number) => EMOJI.repeat(count);

const refOf = ({ sessionId, lockToken }: SessionRef): SessionRef => ({ sessionId, lockToken });

function invalid(field: string): Partial<ErrorReason> {
  return { code: grpc.status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", field };
}

/** The refusal of a value of `length` code points over `limit`, naming what was counted. */
function tooLong(field: string, length: number, limit: number): Partial<ErrorReason> {
  return {
    ...invalid(field),
    message: `${field} is ${length} characters (Unicode code points) long. At most ${limit} are allowed.`,
  };
}

describe("characters are Unicode code points", () => {
  it("takes a session id of 128 emoji through send, peek, accept and receive", async () => {
    const queue = uniqueName("limits-emoji-session");
    await client.createSessionQueue(queue);
    const sessionId = emoji(128);
    await client.send(queue, [{ sessionId, body: Buffer.from("hi") }]);

    const peeked = await client.peekAll(queue, sessionId);
    expect(peeked.map((m) => m.message?.sessionId)).toEqual([sessionId]);

    const lock = await client.acceptNamed(queue, sessionId);
    expect(lock.sessionId).toBe(sessionId);
    const receive = client.receiveStream({ entityPath: queue, session: refOf(lock), prefetch: 1 });
    streams.push(receive);
    const received = await receive.next();
    expect(received.message?.sessionId).toBe(sessionId);
    expect(bodyText(received)).toBe("hi");
    await client.complete(queue, refOf(lock), received.lockToken);
    await client.closeSession(queue, refOf(lock));
  });

  it("refuses a session id of 129 emoji, counted as 129 code points", async () => {
    const queue = uniqueName("limits-emoji-session");
    await client.createSessionQueue(queue);
    expect(
      await failure(client.send(queue, [{ sessionId: emoji(129), body: Buffer.from("x") }])),
    ).toMatchObject(tooLong("messages[0].session_id", 129, 128));
    expect(await failure(client.acceptSession(queue, emoji(129)))).toMatchObject(
      tooLong("session_id", 129, 128),
    );
    expect(await failure(client.peek(queue, { sessionId: emoji(129) }))).toMatchObject(
      tooLong("session_id", 129, 128),
    );
    expect(await client.peekAll(queue)).toEqual([]);
  });

  it("takes message ids and reply-to session ids of 128 emoji and refuses 129", async () => {
    const queue = uniqueName("limits-emoji-ids");
    await client.createQueue(queue);
    await client.send(queue, [
      { messageId: emoji(128), replyToSessionId: emoji(128), body: Buffer.from("ok") },
    ]);
    const [stored] = await client.peekAll(queue);
    expect(stored?.message?.messageId).toBe(emoji(128));
    expect(stored?.message?.replyToSessionId).toBe(emoji(128));

    expect(
      await failure(client.send(queue, [{ messageId: emoji(129), body: Buffer.from("x") }])),
    ).toMatchObject(tooLong("messages[0].message_id", 129, 128));
    expect(
      await failure(
        client.send(queue, [
          { body: Buffer.from("fine") },
          { replyToSessionId: emoji(129), body: Buffer.from("x") },
        ]),
      ),
    ).toMatchObject(tooLong("messages[1].reply_to_session_id", 129, 128));
    expect(await client.peekAll(queue)).toHaveLength(1);
  });

  it("takes an entity path of 260 characters and refuses 261, naming code points", async () => {
    const longest = `${uniqueName("limits-path")}-${"p".repeat(260)}`.slice(0, 260);
    await client.createQueue(longest);
    await client.send(longest, [{ body: Buffer.from("ok") }]);
    expect((await client.peekAll(longest)).map(bodyText)).toEqual(["ok"]);

    const over = `${longest}q`;
    expect(await failure(client.createQueue(over))).toMatchObject(tooLong("name", 261, 260));
    expect(await failure(client.send(over, [{ body: Buffer.from("x") }]))).toMatchObject(
      tooLong("entity_path", 261, 260),
    );
  });

  it("takes a dead-letter reason of 4,096 emoji and refuses 4,097", async () => {
    const queue = uniqueName("limits-reason");
    await client.createQueue(queue);
    await client.send(queue, [{ body: Buffer.from("a") }, { body: Buffer.from("b") }]);
    const receive = client.receiveStream({ entityPath: queue, prefetch: 2 });
    streams.push(receive);
    const [first, second] = await receive.take(2);
    if (!first || !second) throw new Error("two messages expected");

    const deadLetter = (lockToken: string, deadLetterReason: string) =>
      client.settle({
        entityPath: queue,
        lockTokens: [lockToken],
        disposition: "DISPOSITION_DEAD_LETTER",
        deadLetterReason,
      });
    expect(await failure(deadLetter(first.lockToken, emoji(4097)))).toMatchObject(
      tooLong("dead_letter_reason", 4097, 4096),
    );
    await deadLetter(second.lockToken, emoji(4096));
    const [dead] = await client.peekAll(`${queue}/$deadletterqueue`);
    expect(dead?.deadLetterReason).toBe(emoji(4096));
  });

  it("takes a RequestReply instance id of 128 emoji and refuses 129", async () => {
    const requests = uniqueName("limits-rr-req");
    const replies = uniqueName("limits-rr-rep");
    await client.createQueue(requests);
    await client.createSessionQueue(replies);
    const call = (instanceId: string) =>
      client.unary("MessagingService", "RequestReply", {
        entityPath: requests,
        request: { body: Buffer.from("question") },
        replyTo: replies,
        instanceId,
        timeout: { seconds: 0, nanos: 300_000_000 },
      });
    expect(await failure(call(emoji(129)))).toMatchObject(tooLong("instance_id", 129, 128));
    // No responder: a valid instance id gets as far as waiting for the reply (the request
    // is then withdrawn).
    expect(await failure(call(emoji(128)))).toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
      reason: "REQUEST_TIMED_OUT",
    });
  });
});

describe("session ids over the limit are refused before any work", () => {
  it("Peek refuses a 129-character session id on field session_id", async () => {
    const queue = uniqueName("limits-peek");
    await client.createSessionQueue(queue);
    await client.send(queue, [{ sessionId: "s", body: Buffer.from("x") }]);
    expect(await failure(client.peek(queue, { sessionId: "s".repeat(129) }))).toMatchObject(
      tooLong("session_id", 129, 128),
    );
    expect((await client.peek(queue, { sessionId: "s".repeat(128) })).length).toBe(0);
  });

  // Such ids were looked up in the store and answered SESSION_LOCK_LOST, INTERNAL or (as
  // reported, a KV key longer than a NATS protocol line) STORE_UNAVAILABLE after 5 s.
  describe.each([3_000, 6_000, 1_000_000])("a session id of %i characters", (length) => {
    const longId = "x".repeat(length);

    /** A session queue with one held session, and a reference to it with the long id. */
    async function heldSession(): Promise<{ queue: string; lock: SessionRef; bad: SessionRef }> {
      const queue = uniqueName("limits-long-session");
      await client.createSessionQueue(queue);
      await client.send(queue, [{ sessionId: "s", body: Buffer.from("x") }]);
      const lock = refOf(await client.acceptNamed(queue, "s"));
      return { queue, lock, bad: { sessionId: longId, lockToken: lock.lockToken } };
    }

    it("is refused by AcceptSession, Peek and ListSessions (page token)", async () => {
      const queue = uniqueName("limits-long-session");
      await client.createSessionQueue(queue);
      expect(await failure(client.acceptSession(queue, longId))).toMatchObject(
        invalid("session_id"),
      );
      expect(await failure(client.peek(queue, { sessionId: longId }))).toMatchObject(
        invalid("session_id"),
      );
      const token = `s${Buffer.from(longId).toString("base64url")}`;
      expect(await failure(client.listSessions(queue, 10, token))).toMatchObject(
        invalid("page_token"),
      );
    });

    it("is refused by every call made under a session lock", async () => {
      const { queue, lock, bad } = await heldSession();
      const expected = invalid("session.session_id");
      expect(await failure(client.renewSessionLock(queue, bad))).toMatchObject(expected);
      expect(await failure(client.getSessionState(queue, bad))).toMatchObject(expected);
      expect(await failure(client.setSessionState(queue, bad, Buffer.from("s")))).toMatchObject(
        expected,
      );
      expect(await failure(client.complete(queue, bad, lock.lockToken))).toMatchObject(expected);
      expect(await failure(client.receiveDeferred(queue, [1], bad))).toMatchObject(expected);
      expect(await failure(client.closeSession(queue, bad))).toMatchObject(expected);

      const receive = client.receiveStream({ entityPath: queue, session: bad, prefetch: 1 });
      streams.push(receive);
      expect(errorReason(await receive.finalStatus())).toMatchObject(expected);

      const settle = new FrameStream<SessionSettleRequest, { error: FrameError | null }>(
        client.openDuplex("MessagingService", "SettleStream"),
      );
      streams.push(settle);
      const answer = await settle.write({
        entityPath: queue,
        lockTokens: ["t"],
        disposition: "DISPOSITION_COMPLETE",
        session: bad,
      });
      await settle.end();
      expect(answer.error).toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        detail: { reason: "INVALID_ARGUMENT", field: "session.session_id" },
      });

      // The real session is untouched and still held.
      await client.renewSessionLock(queue, lock);
      await client.closeSession(queue, lock);
    });
  });
});

/**
 * Issue 11: every list, string and page token a client sends is bounded before any work is
 * done for it, refused with INVALID_ARGUMENT naming the field, the limit and what was
 * counted (see docs/semantics-choices.md, "Request limits").
 */
describe("request fields are bounded before any work", () => {
  const distinctTokens = (count: number) => Array.from({ length: count }, () => randomUUID());
  const overList = (field: string, count: number, limit: number): Partial<ErrorReason> => ({
    ...invalid(field),
    message: `${field} holds ${count} items; at most ${limit} are allowed in one request.`,
  });

  it("takes a dead-letter description of 4,096 emoji and refuses 4,097, also in SettleStream", async () => {
    const queue = uniqueName("limits-description");
    await client.createQueue(queue);
    await client.send(queue, [{ body: Buffer.from("a") }, { body: Buffer.from("b") }]);
    const receive = client.receiveStream({ entityPath: queue, prefetch: 2 });
    streams.push(receive);
    const [first, second] = await receive.take(2);
    if (!first || !second) throw new Error("two messages expected");
    const request = (lockToken: string, deadLetterDescription: string) => ({
      entityPath: queue,
      lockTokens: [lockToken],
      disposition: "DISPOSITION_DEAD_LETTER" as const,
      deadLetterReason: "r",
      deadLetterDescription,
    });

    expect(await failure(client.settle(request(first.lockToken, emoji(4097))))).toMatchObject(
      tooLong("dead_letter_description", 4097, 4096),
    );
    const settle = new FrameStream<SessionSettleRequest, { error: FrameError | null }>(
      client.openDuplex("MessagingService", "SettleStream"),
    );
    streams.push(settle);
    const answer = await settle.write(request(first.lockToken, "d".repeat(2_000_000)));
    await settle.end();
    expect(answer.error).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      detail: { reason: "INVALID_ARGUMENT", field: "dead_letter_description" },
    });
    // Nothing was settled: the first lock still works, and the limit itself is taken.
    await client.settle(request(first.lockToken, emoji(4096)));
    await client.complete(queue, undefined, second.lockToken);
    const [dead] = await client.peekAll(`${queue}/$deadletterqueue`);
    expect(dead?.deadLetterDescription).toBe(emoji(4096));
  });

  it("refuses more than 4,500 lock tokens in Settle and RenewMessageLock", async () => {
    const queue = uniqueName("limits-tokens");
    await client.createQueue(queue);
    const settle = (lockTokens: string[]) =>
      client.settle({ entityPath: queue, lockTokens, disposition: "DISPOSITION_COMPLETE" });
    const renew = (lockTokens: string[]) =>
      client.unary("MessagingService", "RenewMessageLock", { entityPath: queue, lockTokens });
    expect(await failure(settle(distinctTokens(4501)))).toMatchObject(
      overList("lock_tokens", 4501, 4500),
    );
    expect(await failure(renew(distinctTokens(4501)))).toMatchObject(
      overList("lock_tokens", 4501, 4500),
    );
    // At the limit, well-formed unknown tokens are lost locks, as always.
    const lost = { code: grpc.status.FAILED_PRECONDITION, reason: "MESSAGE_LOCK_LOST" };
    expect(await failure(settle(distinctTokens(4500)))).toMatchObject(lost);
    expect(await failure(renew(distinctTokens(4500)))).toMatchObject(lost);
  });

  it("refuses a lock token over 128 characters, message or session, before looking it up", async () => {
    const queue = uniqueName("limits-token-length");
    await client.createQueue(queue);
    const complete = (token: string) => client.complete(queue, undefined, "ok-token", token);
    expect(await failure(complete("t".repeat(129)))).toMatchObject(
      tooLong("lock_tokens[1]", 129, 128),
    );
    expect(
      await failure(
        client.unary("MessagingService", "RenewMessageLock", {
          entityPath: queue,
          lockTokens: [emoji(1000)],
        }),
      ),
    ).toMatchObject(tooLong("lock_tokens[0]", 1000, 128));
    expect(await failure(complete("t".repeat(128)))).toMatchObject({
      reason: "MESSAGE_LOCK_LOST",
    });

    const sessions = uniqueName("limits-token-length");
    await client.createSessionQueue(sessions);
    const lock = refOf(await client.acceptNamed(sessions, "s"));
    const bad = { sessionId: "s", lockToken: "l".repeat(129) };
    expect(await failure(client.renewSessionLock(sessions, bad))).toMatchObject(
      tooLong("session.lock_token", 129, 128),
    );
    expect(
      await failure(client.renewSessionLock(sessions, { ...bad, lockToken: "l".repeat(128) })),
    ).toMatchObject({ reason: "SESSION_LOCK_LOST" });
    await client.closeSession(sessions, lock);
  });

  it("refuses more than 250 sequence numbers in ReceiveDeferred and 4,500 in CancelScheduledMessages", async () => {
    const queue = uniqueName("limits-sequences");
    await client.createQueue(queue);
    const sequences = (count: number) => Array.from({ length: count }, (_, i) => String(i + 1));
    expect(await failure(client.receiveDeferred(queue, sequences(251)))).toMatchObject(
      overList("sequence_numbers", 251, 250),
    );
    expect(await failure(client.receiveDeferred(queue, sequences(250)))).toMatchObject({
      reason: "MESSAGE_NOT_FOUND",
    });
    const cancel = (count: number) =>
      client.unary("MessagingService", "CancelScheduledMessages", {
        entityPath: queue,
        sequenceNumbers: sequences(count),
      });
    expect(await failure(cancel(4501))).toMatchObject(overList("sequence_numbers", 4501, 4500));
    await cancel(4500);
  });

  it("refuses a ScheduleMessages batch of more than 4,500 messages, like Send", async () => {
    const queue = uniqueName("limits-schedule");
    await client.createQueue(queue);
    const schedule = (count: number) =>
      client.unary("MessagingService", "ScheduleMessages", {
        entityPath: queue,
        messages: Array.from({ length: count }, () => ({ body: Buffer.from("s") })),
        scheduledEnqueueTime: { seconds: Math.floor(Date.now() / 1000) + 3600, nanos: 0 },
      });
    expect(await failure(schedule(4501))).toMatchObject({
      ...invalid("messages"),
      message: "A batch holds at most 4500 messages; this one has 4501. Split it.",
    });
    expect(await client.peekAll(queue)).toEqual([]);
  });

  it("refuses a page token over 1,024 characters and a page size outside 0–1,000 in every List call", async () => {
    const topic = uniqueName("limits-pages");
    await client.unary("AdminService", "CreateTopic", { name: topic });
    const sessions = uniqueName("limits-pages");
    await client.createSessionQueue(sessions);
    const lists: [string, string, object][] = [
      ["AdminService", "ListQueues", {}],
      ["AdminService", "ListTopics", {}],
      ["AdminService", "ListSubscriptions", { topicName: topic }],
      ["MessagingService", "ListSessions", { entityPath: sessions }],
    ];
    for (const [service, name, request] of lists) {
      const list = (pageSize: number, pageToken: string) =>
        client.unary(service, name, { ...request, pageSize, pageToken });
      expect(await failure(list(10, "q".repeat(1025))), name).toMatchObject(
        tooLong("page_token", 1025, 1024),
      );
      for (const pageSize of [-1, -(2 ** 31), 1001, 2 ** 31 - 1]) {
        expect(await failure(list(pageSize, "")), `${name} ${pageSize}`).toMatchObject(
          invalid("page_size"),
        );
      }
      await list(1000, "");
    }
  });
});

describe("subscription rules are bounded before they are stored", () => {
  let topic: string;
  const createRule = (subscriptionName: string, rule: object) =>
    client.unary("AdminService", "CreateRule", { topicName: topic, subscriptionName, rule });
  const correlation = (filter: object, name = "c") =>
    createRule("sub", { name, correlationFilter: filter });

  beforeAll(async () => {
    topic = uniqueName("limits-rules");
    await client.unary("AdminService", "CreateTopic", { name: topic });
    await client.unary("AdminService", "CreateSubscription", { topicName: topic, name: "sub" });
  });

  it("bounds each correlation filter field: ids 128, reply_to 260, the others 1,024", async () => {
    const field = (name: string) => `rule.correlation_filter.${name}`;
    expect(await failure(correlation({ messageId: emoji(129) }))).toMatchObject(
      tooLong(field("message_id"), 129, 128),
    );
    expect(await failure(correlation({ sessionId: emoji(129) }))).toMatchObject(
      tooLong(field("session_id"), 129, 128),
    );
    expect(await failure(correlation({ replyToSessionId: "r".repeat(129) }))).toMatchObject(
      tooLong(field("reply_to_session_id"), 129, 128),
    );
    expect(await failure(correlation({ replyTo: "r".repeat(261) }))).toMatchObject(
      tooLong(field("reply_to"), 261, 260),
    );
    for (const [name, proto] of [
      ["correlationId", "correlation_id"],
      ["to", "to"],
      ["subject", "subject"],
      ["contentType", "content_type"],
    ]) {
      expect(await failure(correlation({ [name as string]: emoji(1025) }))).toMatchObject(
        tooLong(field(proto as string), 1025, 1024),
      );
    }
    await correlation({ messageId: emoji(128), correlationId: emoji(1024) }, "at-limits");
  });

  it("bounds correlation filter properties: 64 of them, names and values of 1,024", async () => {
    const field = "rule.correlation_filter.application_properties";
    const many = Object.fromEntries(
      Array.from({ length: 65 }, (_, i) => [`p${i}`, { boolValue: true }]),
    );
    expect(await failure(correlation({ applicationProperties: many }))).toMatchObject({
      ...invalid(field),
      message: `${field} holds 65 properties; at most 64 are allowed.`,
    });
    expect(
      await failure(correlation({ applicationProperties: { [emoji(1025)]: { boolValue: true } } })),
    ).toMatchObject({
      ...invalid(field),
      message: `${field} has a property name of 1025 characters (Unicode code points). At most 1024 are allowed.`,
    });
    expect(
      await failure(correlation({ applicationProperties: { p: { stringValue: emoji(1025) } } })),
    ).toMatchObject(tooLong(`${field}["p"]`, 1025, 1024));
    expect(
      await failure(
        correlation({ applicationProperties: { p: { bytesValue: Buffer.alloc(1025) } } }),
      ),
    ).toMatchObject({
      ...invalid(`${field}["p"]`),
      message: `${field}["p"] is 1025 bytes long. At most 1024 are allowed.`,
    });
  });

  it("refuses a rule over 8 KiB as stored, also one given to CreateSubscription", async () => {
    const big = { correlationId: emoji(1024), to: emoji(1024), subject: emoji(100) };
    const refused = await failure(correlation(big, "big"));
    expect(refused).toMatchObject(invalid("rule"));
    expect(refused.message).toMatch(
      /^rule "big" takes \d+ bytes as stored \(UTF-8 JSON\); at most 8192 are allowed/,
    );
    expect(
      await failure(
        client.unary("AdminService", "CreateSubscription", {
          topicName: topic,
          name: "big",
          rule: { name: "big", correlationFilter: big },
        }),
      ),
    ).toMatchObject(invalid("rule"));
    const listed = await client.unary<{ rules: { name: string }[] }>("AdminService", "ListRules", {
      topicName: topic,
      subscriptionName: "sub",
    });
    expect(listed.rules.map((r) => r.name)).not.toContain("big");
  });

  it("keeps a subscription's rules within 512 KiB as stored, so its record stays storable", async () => {
    await client.unary("AdminService", "CreateSubscription", { topicName: topic, name: "full" });
    // 1,024 characters, over 4 KiB as UTF-8: about 126 fit. Before the limit the record
    // grew past NATS's 1 MiB payload and the store refused it.
    const expression = `s = '${emoji(1017)}'`;
    let created = 0;
    let refusedAt: ErrorReason | undefined;
    while (created < 300 && refusedAt === undefined) {
      try {
        await createRule("full", { name: `r${created}`, sqlFilter: { expression } });
        created++;
      } catch (error) {
        refusedAt = errorReason(error);
      }
    }
    expect(refusedAt).toMatchObject(invalid("rule"));
    expect(refusedAt?.message).toMatch(/at most 524288 are allowed per subscription/);
    expect(created).toBeGreaterThan(100);
    const listed = await client.unary<{ rules: unknown[] }>("AdminService", "ListRules", {
      topicName: topic,
      subscriptionName: "full",
    });
    expect(listed.rules).toHaveLength(created + 1); // and $Default
  });
});

describe("RequestReply checks its request before accepting the reply session", () => {
  it("refuses a request session id of 129 characters on request.session_id", async () => {
    const requests = uniqueName("limits-rr-req");
    const replies = uniqueName("limits-rr-rep");
    await client.createSessionQueue(requests);
    await client.createSessionQueue(replies);
    const call = (request: object) =>
      client.unary("MessagingService", "RequestReply", {
        entityPath: requests,
        request,
        replyTo: replies,
        instanceId: "instance",
        timeout: { seconds: 5, nanos: 0 },
      });
    expect(await failure(call({ sessionId: emoji(129), body: Buffer.from("q") }))).toMatchObject(
      tooLong("request.session_id", 129, 128),
    );
    expect(await failure(call({ body: Buffer.from("q") }))).toMatchObject({
      reason: "SESSION_ID_REQUIRED",
      field: "request",
    });
    expect(
      await failure(call({ sessionId: "s", timeToLive: { seconds: -1, nanos: 0 } })),
    ).toMatchObject(invalid("request.time_to_live"));
    // Nothing was sent, and the reply session was never taken.
    expect(await client.peekAll(requests)).toEqual([]);
    const lock = refOf(await client.acceptNamed(replies, "instance"));
    await client.closeSession(replies, lock);
  });
});
