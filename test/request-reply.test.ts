/**
 * The RequestReply RPC (semantics §5): a responder in the test reads a session-less request
 * queue and replies to reply_to in session reply_to_session_id with correlation_id = the
 * request's message_id. Many concurrent calls of one instance share its reply session; a
 * stray reply is dead-lettered without disturbing them; a call without a reply ends with
 * DEADLINE_EXCEEDED / REQUEST_TIMED_OUT and leaves no request, lock or reply behind.
 */
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createSessionBusClient, RequestTimeoutError } from "../src/client/index.js";
import { brokerPerFile } from "./support/broker-per-file.js";
import {
  bodyText,
  type DurationInput,
  failure,
  type MessageInput,
  type ReceivedMessage,
  seconds,
  toMs,
  uniqueName,
  within,
} from "./support/grpc-client.js";
import { type SessionTestBroker, startSessionBroker } from "./support/session-broker.js";
import type { SessionClient, SessionReceiveStream } from "./support/session-client.js";
import { testConnectionString } from "./support/test-credentials.js";

/** Bound of the waits for replies (50 round trips through a responder). */
const REPLIES_BOUND_MS = 30_000;

let running: SessionTestBroker;
let client: SessionClient;
const streams = brokerPerFile(startSessionBroker, (started) => {
  running = started;
  client = started.client;
});

interface RequestReplyInput {
  entityPath: string;
  request?: MessageInput;
  replyTo?: string;
  instanceId?: string;
  timeout?: DurationInput;
}

interface RequestReplyResponse {
  reply: ReceivedMessage | null;
  requestSequenceNumber: string;
  requestMessageId: string;
}

function requestReply(
  request: RequestReplyInput,
  from: SessionClient = client,
): Promise<RequestReplyResponse> {
  return from.unary<RequestReplyResponse>("MessagingService", "RequestReply", request);
}

/** A request queue (no sessions) and a session-enabled reply queue. */
async function queues(prefix: string): Promise<{ requests: string; replies: string }> {
  const requests = uniqueName(`${prefix}-req`);
  const replies = uniqueName(`${prefix}-rep`);
  await client.createQueue(requests);
  await client.createSessionQueue(replies);
  return { requests, replies };
}

function receiveStream(entityPath: string, prefetch: number): SessionReceiveStream {
  const stream = client.receiveStream({ entityPath, prefetch });
  streams.push(stream);
  return stream;
}

interface TestResponder {
  /** The requests answered so far, as received. */
  readonly answered: ReceivedMessage[];
  /** Resolves when `count` requests have been received (answered or not). */
  received(count: number): Promise<void>;
  /** Stops receiving; fails if the responder failed. */
  stop(): Promise<void>;
}

/**
 * Answers each request of `requestQueue` (once `gate` resolves) as semantics §5 says: a
 * reply to reply_to in session reply_to_session_id, correlation_id = the request's
 * message_id, body "reply to <request body>"; then completes the request.
 */
function startResponder(requestQueue: string, gate: Promise<void> = Promise.resolve()) {
  const stream = receiveStream(requestQueue, 100);
  const answered: ReceivedMessage[] = [];
  let receivedCount = 0;
  let wake: (() => void) | undefined;
  let stopping = false;
  const pending = new Set<Promise<void>>();
  const answer = (request: ReceivedMessage) => {
    const work = (async () => {
      await gate;
      const message = request.message;
      if (!message) throw new Error("a request without a message");
      await client.send(message.replyTo, [
        {
          sessionId: message.replyToSessionId ?? "",
          correlationId: message.messageId,
          subject: "reply",
          body: Buffer.from(`reply to ${bodyText(request)}`),
        },
      ]);
      await client.complete(requestQueue, undefined, request.lockToken);
      answered.push(request);
    })();
    pending.add(work);
  };
  const loop = (async () => {
    for (;;) {
      let request: ReceivedMessage;
      try {
        request = await stream.next(60_000);
      } catch (error) {
        if (stopping) return;
        throw error;
      }
      receivedCount++;
      wake?.();
      void answer(request);
    }
  })();
  loop.catch(() => undefined);
  const responder: TestResponder = {
    answered,
    async received(count) {
      while (receivedCount < count) {
        await within(
          new Promise<void>((resolve) => {
            wake = resolve;
          }),
          REPLIES_BOUND_MS,
          `request ${receivedCount + 1} of ${count} at the responder`,
        );
      }
    },
    async stop() {
      stopping = true;
      stream.cancel();
      await loop;
      await Promise.all(pending);
    },
  };
  return responder;
}

/** The reply session is free: AcceptSession by name gets it at once; it holds no message. */
async function expectReplySessionFree(replies: string, instanceId: string): Promise<void> {
  const lock = await client.acceptNamed(replies, instanceId);
  expect(await client.peekAll(replies, instanceId)).toEqual([]);
  await client.closeSession(replies, lock);
}

describe("RequestReply with a responder", () => {
  it("gives each of 50 concurrent calls of one instance its own reply, then frees everything", async () => {
    const { requests, replies } = await queues("rr-fifty");
    const responder = startResponder(requests);
    const instanceId = randomUUID();
    try {
      const calls = Array.from({ length: 50 }, (_, i) =>
        requestReply({
          entityPath: requests,
          request: { body: Buffer.from(`question ${i}`), subject: "question" },
          replyTo: replies,
          instanceId,
          timeout: seconds(25),
        }),
      );
      const answers = await within(Promise.all(calls), REPLIES_BOUND_MS, "50 replies");
      answers.forEach((answer, i) => {
        expect(answer.reply).not.toBeNull();
        const reply = answer.reply as ReceivedMessage;
        expect(bodyText(reply)).toBe(`reply to question ${i}`);
        expect(reply.message?.sessionId).toBe(instanceId);
        expect(reply.message?.correlationId).toBe(answer.requestMessageId);
        expect(reply.message?.subject).toBe("reply");
        // Completed by the broker: no lock to settle with.
        expect(reply.lockToken).toBe("");
        expect(Number(answer.requestSequenceNumber)).toBeGreaterThan(0);
      });
      expect(new Set(answers.map((a) => a.requestMessageId)).size).toBe(50);
      // Every request named the instance's session of the reply queue and expired with the call.
      expect(responder.answered).toHaveLength(50);
      for (const request of responder.answered) {
        expect(request.message?.replyTo).toBe(replies);
        expect(request.message?.replyToSessionId).toBe(instanceId);
        expect(toMs(request.expiresAt) - toMs(request.enqueuedTime)).toBeLessThanOrEqual(25_000);
      }
    } finally {
      await responder.stop();
    }
    expect(await client.peekAll(requests)).toEqual([]);
    expect(await client.peekAll(replies)).toEqual([]);
    await expectReplySessionFree(replies, instanceId);
  });

  it("sends the request to a topic; a responder on a subscription answers", async () => {
    const topic = uniqueName("rr-topic");
    const replies = uniqueName("rr-topic-rep");
    await client.unary("AdminService", "CreateTopic", { name: topic });
    try {
      await client.unary("AdminService", "CreateSubscription", {
        topicName: topic,
        name: "responders",
      });
      await client.createSessionQueue(replies);
      const responder = startResponder(`${topic}/subscriptions/responders`);
      try {
        const answer = await requestReply({
          entityPath: topic,
          request: { body: Buffer.from("via a topic") },
          replyTo: replies,
          timeout: seconds(20),
        });
        expect(answer.reply && bodyText(answer.reply)).toBe("reply to via a topic");
        expect(answer.reply?.message?.correlationId).toBe(answer.requestMessageId);
      } finally {
        await responder.stop();
      }
      expect(await client.peekAll(`${topic}/subscriptions/responders`)).toEqual([]);
      expect(await client.peekAll(replies)).toEqual([]);
    } finally {
      await client.unary("AdminService", "DeleteTopic", { name: topic });
    }
  });

  it("keeps the request's own message id and generates an instance id when none is given", async () => {
    const { requests, replies } = await queues("rr-ids");
    const responder = startResponder(requests);
    try {
      const answer = await requestReply({
        entityPath: requests,
        request: { messageId: "my-request-1", body: Buffer.from("hello") },
        replyTo: replies,
        timeout: seconds(20),
      });
      expect(answer.requestMessageId).toBe("my-request-1");
      expect(answer.reply?.message?.correlationId).toBe("my-request-1");
      expect(bodyText(answer.reply as ReceivedMessage)).toBe("reply to hello");
      const instanceId = answer.reply?.message?.sessionId ?? "";
      expect(instanceId).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await responder.stop();
    }
  });

  it("dead-letters a stray reply (NoWaitingRequest) without disturbing the waiting calls", async () => {
    const { requests, replies } = await queues("rr-stray");
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const responder = startResponder(requests, gate);
    const deadLetters = receiveStream(`${replies}/$deadletterqueue`, 1);
    const instanceId = randomUUID();
    try {
      const calls = Array.from({ length: 5 }, (_, i) =>
        requestReply({
          entityPath: requests,
          request: { body: Buffer.from(`q${i}`) },
          replyTo: replies,
          instanceId,
          timeout: seconds(25),
        }),
      );
      // All five requests are out, so the calls wait under the reply session's lock.
      await responder.received(5);
      await client.send(replies, [
        {
          sessionId: instanceId,
          correlationId: "nobody-asked-for-this",
          body: Buffer.from("stray"),
        },
      ]);
      const stray = await deadLetters.next(REPLIES_BOUND_MS);
      expect(bodyText(stray)).toBe("stray");
      expect(stray.deadLetterReason).toBe("NoWaitingRequest");
      expect(stray.deadLetterSource).toBe(replies);
      expect(stray.message?.sessionId).toBe(instanceId);
      expect(stray.message?.correlationId).toBe("nobody-asked-for-this");

      openGate();
      const answers = await within(Promise.all(calls), REPLIES_BOUND_MS, "5 replies");
      expect(answers.map((a) => bodyText(a.reply as ReceivedMessage))).toEqual([
        "reply to q0",
        "reply to q1",
        "reply to q2",
        "reply to q3",
        "reply to q4",
      ]);
    } finally {
      openGate();
      await responder.stop();
    }
    await expectReplySessionFree(replies, instanceId);
  });
});

describe("RequestReply without a reply", () => {
  it("ends with DEADLINE_EXCEEDED / REQUEST_TIMED_OUT and leaves no request, lock or reply", async () => {
    const { requests, replies } = await queues("rr-timeout");
    const instanceId = randomUUID();
    const error = await within(
      failure(
        requestReply({
          entityPath: requests,
          request: { body: Buffer.from("anyone?") },
          replyTo: replies,
          instanceId,
          timeout: { seconds: 1, nanos: 500_000_000 },
        }),
      ),
      REPLIES_BOUND_MS,
      "the timed-out call",
    );
    expect(error).toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
      reason: "REQUEST_TIMED_OUT",
      entityPath: requests,
    });
    expect(await client.peekAll(requests)).toEqual([]);
    const listed = await client.listAllSessions(replies);
    expect(listed.sessions.filter((s) => s.sessionId === instanceId && s.locked)).toEqual([]);
    await expectReplySessionFree(replies, instanceId);
  });

  it("ends before the caller's own deadline, so the caller sees REQUEST_TIMED_OUT", async () => {
    const { requests, replies } = await queues("rr-deadline");
    const shortDeadline = running.newClient({ deadlineMs: 2_500 });
    const instanceId = randomUUID();
    const error = await failure(
      requestReply(
        {
          entityPath: requests,
          request: { body: Buffer.from("in a hurry") },
          replyTo: replies,
          instanceId,
          timeout: seconds(60),
        },
        shortDeadline,
      ),
    );
    expect(error).toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
      reason: "REQUEST_TIMED_OUT",
    });
    expect(await client.peekAll(requests)).toEqual([]);
    await expectReplySessionFree(replies, instanceId);
  });

  // Half of an odd number of milliseconds left made a fractional timer: INTERNAL (fuzz).
  it("answers REQUEST_TIMED_OUT, never INTERNAL, to callers with deadlines under 2 s", async () => {
    const { requests, replies } = await queues("rr-odd-deadline");
    const errors = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        failure(
          requestReply(
            {
              entityPath: requests,
              request: { body: Buffer.from("quick") },
              replyTo: replies,
              instanceId: `odd-${i}`,
              timeout: seconds(60),
            },
            running.newClient({ deadlineMs: 1_501 + i }),
          ),
        ),
      ),
    );
    for (const error of errors) {
      expect(error).toMatchObject({
        code: grpc.status.DEADLINE_EXCEEDED,
        reason: "REQUEST_TIMED_OUT",
      });
    }
    expect(await client.peekAll(requests)).toEqual([]);
  });

  it("dead-letters a reply that comes after its call ended, when the instance next listens", async () => {
    const { requests, replies } = await queues("rr-late");
    const instanceId = randomUUID();
    const timedOut = await failure(
      requestReply({
        entityPath: requests,
        request: { messageId: "late-1", body: Buffer.from("slow") },
        replyTo: replies,
        instanceId,
        timeout: seconds(1),
      }),
    );
    expect(timedOut.reason).toBe("REQUEST_TIMED_OUT");
    // The reply arrives anyway; nobody holds the session, so it waits there.
    await client.send(replies, [
      { sessionId: instanceId, correlationId: "late-1", body: Buffer.from("too late") },
    ]);
    const deadLetters = receiveStream(`${replies}/$deadletterqueue`, 1);
    const responder = startResponder(requests);
    try {
      const next = await requestReply({
        entityPath: requests,
        request: { body: Buffer.from("fast") },
        replyTo: replies,
        instanceId,
        timeout: seconds(20),
      });
      expect(bodyText(next.reply as ReceivedMessage)).toBe("reply to fast");
    } finally {
      await responder.stop();
    }
    const late = await deadLetters.next(REPLIES_BOUND_MS);
    expect(bodyText(late)).toBe("too late");
    expect(late.deadLetterReason).toBe("NoWaitingRequest");
    await expectReplySessionFree(replies, instanceId);
  });
});

describe("RequestReply refuses bad input", () => {
  it("names the problem with the right status and reason", async () => {
    const { requests, replies } = await queues("rr-bad");
    const plain = uniqueName("rr-bad-plain");
    await client.createQueue(plain);
    const sessionRequests = uniqueName("rr-bad-sess");
    await client.createSessionQueue(sessionRequests);
    const instanceId = randomUUID();
    const call = (overrides: Partial<RequestReplyInput>) =>
      failure(
        requestReply({
          entityPath: requests,
          request: { body: Buffer.from("x") },
          replyTo: replies,
          instanceId,
          timeout: seconds(5),
          ...overrides,
        }),
      );

    expect(await call({ replyTo: "" })).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      reason: "INVALID_ARGUMENT",
      field: "reply_to",
    });
    expect(await call({ replyTo: plain })).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "NOT_SESSION_ENTITY",
      entityPath: plain,
    });
    expect(await call({ replyTo: uniqueName("rr-no-such-reply") })).toMatchObject({
      code: grpc.status.NOT_FOUND,
      reason: "ENTITY_NOT_FOUND",
    });
    const missing = uniqueName("rr-no-such-request");
    expect(await call({ entityPath: missing })).toMatchObject({
      code: grpc.status.NOT_FOUND,
      reason: "ENTITY_NOT_FOUND",
      entityPath: missing,
    });
    expect(await call({ entityPath: sessionRequests })).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "SESSION_ID_REQUIRED",
    });
    expect(await call({ instanceId: "i".repeat(129) })).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: "instance_id",
    });
    expect(await call({ timeout: { seconds: -1 } })).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: "timeout",
    });
    // None of them left a request or a locked reply session behind.
    expect(await client.peekAll(requests)).toEqual([]);
    await expectReplySessionFree(replies, instanceId);

    // An instance whose session someone else holds cannot be used meanwhile.
    const held = await client.acceptNamed(replies, instanceId);
    expect(await call({})).toMatchObject({
      code: grpc.status.ABORTED,
      reason: "SESSION_CANNOT_BE_LOCKED",
      sessionId: instanceId,
    });
    await client.closeSession(replies, held);
    expect(await client.peekAll(requests)).toEqual([]);
  });

  it("refuses a second concurrent call with the same message id of one instance", async () => {
    const { requests, replies } = await queues("rr-same-id");
    const instanceId = randomUUID();
    const request = {
      entityPath: requests,
      request: { messageId: "twice", body: Buffer.from("x") },
      replyTo: replies,
      instanceId,
      timeout: seconds(3),
    };
    const first = failure(requestReply(request));
    // The first request is out (a receiver holds it, never answering): its call waits.
    await receiveStream(requests, 1).next();
    expect(await failure(requestReply(request))).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: "request.message_id",
    });
    expect((await first).reason).toBe("REQUEST_TIMED_OUT");
  });
});

describe("the SDK's requestReply", () => {
  it("goes through the RPC: a reply, and RequestTimeoutError with nothing left behind", async () => {
    const { requests, replies } = await queues("rr-sdk");
    const sdk = createSessionBusClient({
      connectionString: testConnectionString(running.broker.url),
    });
    const responder = startResponder(requests);
    try {
      const reply = await sdk.requestReply(requests, { body: "ping" }, { replyQueue: replies });
      expect(reply.text).toBe("reply to ping");
      expect(reply.sessionId).toBe(sdk.instanceId);
    } finally {
      await responder.stop();
    }
    const error = await sdk
      .requestReply(requests, { body: "unanswered" }, { replyQueue: replies, timeoutMs: 1_000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect(error).toMatchObject({ reason: "REQUEST_TIMED_OUT", entityPath: requests });
    expect(await client.peekAll(requests)).toEqual([]);
    await expectReplySessionFree(replies, sdk.instanceId);
    await sdk.close();
  });
});
