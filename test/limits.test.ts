/**
 * The length limits of semantics §8 through the gRPC API: "characters" are Unicode code
 * points everywhere (128 emoji are a valid session id, though 256 UTF-16 units), the
 * refusals say what was counted, and every RPC that names a session refuses a session id
 * over the limit with INVALID_ARGUMENT before asking the store anything (a long id once
 * made NATS time out: STORE_UNAVAILABLE after 5 s).
 */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
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
