/**
 * SendStream and SettleStream: one Send or Settle per frame, answered one to one in order,
 * pipelined (frames are written without waiting for answers); a failed frame is answered
 * with its error, changes nothing and does not end the stream. Driven by the grpc-js
 * client against a real broker and nats-server.
 */
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import { type FrameError, FrameStream } from "./support/frame-stream.js";
import { bodyText, type MessageInput, type SendResult, uniqueName } from "./support/grpc-client.js";
import { startSessionBroker } from "./support/session-broker.js";
import type { SessionClient, SessionRef, SessionSettleRequest } from "./support/session-client.js";

interface SendAnswer {
  results: SendResult[];
  error: FrameError | null;
}
interface SettleAnswer {
  error: FrameError | null;
}

let client: SessionClient;
const streams = brokerPerFile(startSessionBroker, (started) => {
  client = started.client;
});

function sendStream() {
  return new FrameStream<{ entityPath: string; messages: MessageInput[] }, SendAnswer>(
    client.openDuplex("MessagingService", "SendStream"),
  );
}

function settleStream() {
  return new FrameStream<SessionSettleRequest, SettleAnswer>(
    client.openDuplex("MessagingService", "SettleStream"),
  );
}

const refOf = ({ sessionId, lockToken }: SessionRef): SessionRef => ({ sessionId, lockToken });

describe("SendStream", () => {
  it("stores pipelined frames in frame order per session, one answer per frame", async () => {
    const queue = uniqueName("send-stream");
    await client.createSessionQueue(queue);
    const stream = sendStream();
    // 200 frames written at once: 10 sessions × 20 steps, interleaved.
    const answers = Array.from({ length: 200 }, (_, i) => {
      const session = `s-${i % 10}`;
      const step = Math.floor(i / 10) + 1;
      return stream.write({
        entityPath: queue,
        messages: [
          { sessionId: session, messageId: `${session}-${step}`, body: Buffer.from(`${step}`) },
        ],
      });
    });
    const answered = await Promise.all(answers);
    await stream.end();

    for (const [i, answer] of answered.entries()) {
      expect(answer.error).toBeNull();
      expect(answer.results).toHaveLength(1);
      const session = `s-${i % 10}`;
      expect(answer.results[0]?.messageId).toBe(`${session}-${Math.floor(i / 10) + 1}`);
    }
    for (let s = 0; s < 10; s++) {
      const messages = await client.peekAll(queue, `s-${s}`);
      expect(messages.map(bodyText)).toEqual(Array.from({ length: 20 }, (_, i) => `${i + 1}`));
      // Sequence numbers rise in frame order, and are those the answers gave.
      const sequences = messages.map((m) => Number(m.sequenceNumber));
      expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
      expect(sequences).toEqual(
        answered
          .filter((_, i) => i % 10 === s)
          .map((answer) => Number(answer.results[0]?.sequenceNumber)),
      );
    }
  });

  it("answers a failed frame with its error, stores nothing of it, and goes on", async () => {
    const queue = uniqueName("send-stream-errors");
    await client.createSessionQueue(queue);
    const stream = sendStream();
    const [first, noSession, unknownEntity, badId, last] = await Promise.all([
      stream.write({ entityPath: queue, messages: [{ sessionId: "a", body: Buffer.from("1") }] }),
      // One message of the batch lacks a session id: the whole frame is refused.
      stream.write({
        entityPath: queue,
        messages: [{ sessionId: "a", body: Buffer.from("x") }, { body: Buffer.from("y") }],
      }),
      stream.write({ entityPath: uniqueName("missing"), messages: [{ body: Buffer.from("z") }] }),
      stream.write({
        entityPath: queue,
        messages: [{ sessionId: "a", messageId: "m".repeat(129), body: Buffer.from("w") }],
      }),
      stream.write({ entityPath: queue, messages: [{ sessionId: "a", body: Buffer.from("2") }] }),
    ]);
    await stream.end();

    expect(first?.error).toBeNull();
    expect(last?.error).toBeNull();
    expect(noSession?.results).toEqual([]);
    expect(noSession?.error).toMatchObject({
      code: status.FAILED_PRECONDITION,
      detail: { reason: "SESSION_ID_REQUIRED", field: "messages[1]" },
    });
    expect(unknownEntity?.error).toMatchObject({
      code: status.NOT_FOUND,
      detail: { reason: "ENTITY_NOT_FOUND" },
    });
    expect(badId?.error).toMatchObject({
      code: status.INVALID_ARGUMENT,
      detail: { reason: "INVALID_ARGUMENT", field: "messages[0].message_id" },
    });
    expect(badId?.error?.message).toMatch(/message_id/);
    // Only the two good frames were stored.
    expect((await client.peekAll(queue, "a")).map(bodyText)).toEqual(["1", "2"]);
  });

  it("ends the call after answering every frame when the client half-closes", async () => {
    const queue = uniqueName("send-stream-end");
    await client.createSessionQueue(queue);
    const stream = sendStream();
    const answers = [1, 2, 3].map((n) =>
      stream.write({
        entityPath: queue,
        messages: [{ sessionId: "e", body: Buffer.from(`${n}`) }],
      }),
    );
    await stream.end();
    expect((await Promise.all(answers)).map((a) => a.results.length)).toEqual([1, 1, 1]);
    expect(await client.peekAll(queue, "e")).toHaveLength(3);
  });
});

describe("SettleStream", () => {
  it("completes pipelined frames under a session lock, and answers misuse per frame", async () => {
    const queue = uniqueName("settle-stream");
    await client.createSessionQueue(queue);
    await client.send(
      queue,
      Array.from({ length: 20 }, (_, i) => ({ sessionId: "s", body: Buffer.from(`${i + 1}`) })),
    );
    const lock = await client.acceptNamed(queue, "s");
    const receive = client.receiveStream({ entityPath: queue, session: refOf(lock), prefetch: 20 });
    streams.push(receive);
    const received = await receive.take(20);
    expect(received.map(bodyText)).toEqual(Array.from({ length: 20 }, (_, i) => `${i + 1}`));

    const stream = settleStream();
    const complete = (lockTokens: string[], session: SessionRef = refOf(lock)) =>
      stream.write({ entityPath: queue, lockTokens, disposition: "DISPOSITION_COMPLETE", session });
    const first = received.slice(0, 18).map((m) => complete([m.lockToken]));
    const again = complete([received[0]?.lockToken as string]);
    const wrongLock = complete([received[18]?.lockToken as string], {
      sessionId: "s",
      lockToken: "not-the-lock",
    });
    const rest = complete(received.slice(18).map((m) => m.lockToken));
    const answers = await Promise.all([...first, again, wrongLock, rest]);
    await stream.end();

    for (const answer of answers.slice(0, 18)) expect(answer.error).toBeNull();
    expect(answers[18]?.error).toMatchObject({
      code: status.FAILED_PRECONDITION,
      detail: { reason: "MESSAGE_ALREADY_SETTLED" },
    });
    expect(answers[19]?.error).toMatchObject({
      code: status.FAILED_PRECONDITION,
      detail: { reason: "SESSION_LOCK_LOST" },
    });
    // The refused frame settled nothing: the last frame could still complete its tokens.
    expect(answers[20]?.error).toBeNull();
    expect(await client.peekAll(queue, "s")).toEqual([]);
    await client.closeSession(queue, refOf(lock));
  });
});
