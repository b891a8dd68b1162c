/**
 * Scheduled messages (semantics §3): ScheduleMessages, CancelScheduledMessages and Send with
 * scheduled_enqueue_time. A scheduled message gets its sequence number at once, is peeked
 * with state SCHEDULED, is not received before its time, is received after it (in its
 * session), and a cancelled one never arrives; schedules survive a killed broker.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningSessionbus, startSessionbus } from "../src/app.js";
import { type NatsServerProcess, startNatsServer } from "../src/store/nats-server-process.js";
import { brokerPerFile } from "./support/broker-per-file.js";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import {
  bodyText,
  type DurationInput,
  failure,
  type MessageInput,
  type Queue,
  type ReceivedMessage,
  toMs,
  uniqueName,
  within,
} from "./support/grpc-client.js";
import { startSessionBroker } from "./support/session-broker.js";
import {
  SessionClient,
  type SessionReceiveStream,
  type SessionRef,
} from "./support/session-client.js";

/** How far ahead the tests schedule. */
const AHEAD_MS = 2_000;
/** A due message is activated within this bound after its time (it is usually milliseconds). */
const ACTIVATION_BOUND_MS = 10_000;
/** How long past its time a cancelled message is watched for. */
const CANCELLED_WATCH_MS = 3_000;

let client: SessionClient;
const streams = brokerPerFile(startSessionBroker, (started) => {
  client = started.client;
});

/** A google.protobuf.Timestamp of `ms` since the epoch, for requests. */
function timestampOf(ms: number): DurationInput {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

async function schedule(
  on: SessionClient,
  entityPath: string,
  messages: MessageInput[],
  at: number,
): Promise<string[]> {
  const response = await on.unary<{ sequenceNumbers: string[] }>(
    "MessagingService",
    "ScheduleMessages",
    { entityPath, messages, scheduledEnqueueTime: timestampOf(at) },
  );
  return response.sequenceNumbers;
}

async function cancel(entityPath: string, sequenceNumbers: string[]): Promise<void> {
  await client.unary("MessagingService", "CancelScheduledMessages", {
    entityPath,
    sequenceNumbers,
  });
}

async function runtimeOf(name: string): Promise<NonNullable<Queue["runtimeInfo"]>> {
  const { queue } = await client.unary<{ queue: Queue }>("AdminService", "GetQueue", { name });
  if (!queue.runtimeInfo) throw new Error("GetQueue returned no runtime info");
  return queue.runtimeInfo;
}

function receiver(entityPath: string, session?: SessionRef): SessionReceiveStream {
  const stream = client.receiveStream({
    entityPath,
    prefetch: 10,
    ...(session ? { session } : {}),
  });
  streams.push(stream);
  return stream;
}

/** The next message, which must come by `dueAt` plus the activation bound. */
function nextBy(stream: SessionReceiveStream, dueAt: number): Promise<ReceivedMessage> {
  return stream.next(Math.max(1, dueAt - Date.now()) + ACTIVATION_BOUND_MS);
}

/** Fails if the stream delivers anything within `ms`. */
async function nothingWithin(stream: SessionReceiveStream, ms: number): Promise<void> {
  await expect(stream.event(ms)).rejects.toThrow(/within|timed out/);
}

describe("on a plain queue", () => {
  it("peeks the message as scheduled, does not deliver it before its time, delivers it after", async () => {
    const queue = uniqueName("sched-plain");
    await client.createQueue(queue);
    const stream = receiver(queue);
    const dueAt = Date.now() + AHEAD_MS;
    const [sequence] = await schedule(
      client,
      queue,
      [{ messageId: "later", body: Buffer.from("wake up") }],
      dueAt,
    );
    expect(sequence).toBeDefined();

    const peeked = await client.peek(queue);
    expect(peeked).toHaveLength(1);
    expect(peeked[0]).toMatchObject({
      sequenceNumber: sequence,
      state: "MESSAGE_STATE_SCHEDULED",
      message: { messageId: "later" },
    });
    expect(toMs(peeked[0]?.message?.scheduledEnqueueTime)).toBe(dueAt);

    const received = await nextBy(stream, dueAt);
    // The receiver was waiting all along: what it got came no earlier than the due time.
    expect(Date.now()).toBeGreaterThanOrEqual(dueAt);
    expect(bodyText(received)).toBe("wake up");
    expect(received).toMatchObject({
      state: "MESSAGE_STATE_ACTIVE",
      deliveryCount: 1,
      message: { messageId: "later" },
    });
    expect(toMs(received.message?.scheduledEnqueueTime)).toBe(dueAt);
    // Activation enqueues it anew (as Service Bus does): a new, higher sequence number.
    expect(BigInt(received.sequenceNumber)).toBeGreaterThan(BigInt(sequence as string));
    expect(toMs(received.enqueuedTime)).toBeGreaterThanOrEqual(dueAt);
    await client.complete(queue, undefined, received.lockToken);
    expect(await client.peek(queue)).toEqual([]);
  });

  it("never delivers a cancelled message", async () => {
    const queue = uniqueName("sched-cancel");
    await client.createQueue(queue);
    const stream = receiver(queue);
    const dueAt = Date.now() + AHEAD_MS;
    const [cancelled, kept] = await schedule(
      client,
      queue,
      [
        { messageId: "cancelled", body: Buffer.from("never") },
        { messageId: "kept", body: Buffer.from("witness") },
      ],
      dueAt,
    );
    await cancel(queue, [cancelled as string]);
    expect((await client.peek(queue)).map((m) => m.sequenceNumber)).toEqual([kept]);

    // The message scheduled for the same instant arrives; the cancelled one does not, then
    // or later.
    const received = await nextBy(stream, dueAt);
    expect(received.message?.messageId).toBe("kept");
    await client.complete(queue, undefined, received.lockToken);
    await nothingWithin(stream, CANCELLED_WATCH_MS);
    expect(await client.peek(queue)).toEqual([]);
  });

  it("drops the schedule of a deleted queue: one re-created under its name gets nothing", async () => {
    const queue = uniqueName("sched-deleted");
    await client.createQueue(queue);
    const dueAt = Date.now() + AHEAD_MS;
    await schedule(client, queue, [{ messageId: "orphan" }], dueAt);
    await client.deleteQueue(queue);
    await client.createQueue(queue);
    const stream = receiver(queue);
    await nothingWithin(stream, dueAt - Date.now() + CANCELLED_WATCH_MS);
    expect(await client.peek(queue)).toEqual([]);
  });

  it("counts scheduled messages apart from active ones in the runtime figures", async () => {
    const queue = uniqueName("sched-count");
    await client.createQueue(queue);
    const dueAt = Date.now() + 60_000;
    const sequences = await schedule(
      client,
      queue,
      [{ body: Buffer.from("a") }, { body: Buffer.from("b") }],
      dueAt,
    );
    await client.send(queue, [{ body: Buffer.from("now") }]);
    expect(await runtimeOf(queue)).toMatchObject({
      activeMessageCount: "1",
      scheduledMessageCount: "2",
    });
    await cancel(queue, sequences);
    expect(await runtimeOf(queue)).toMatchObject({
      activeMessageCount: "1",
      scheduledMessageCount: "0",
    });
  });

  it("schedules the messages of Send whose scheduled_enqueue_time is in the future", async () => {
    const queue = uniqueName("sched-send");
    await client.createQueue(queue);
    const dueAt = Date.now() + AHEAD_MS;
    const results = await client.send(queue, [
      { messageId: "first", body: Buffer.from("at once") },
      {
        messageId: "scheduled",
        body: Buffer.from("later"),
        scheduledEnqueueTime: timestampOf(dueAt),
      },
      {
        messageId: "past",
        body: Buffer.from("past time"),
        scheduledEnqueueTime: timestampOf(Date.now() - 60_000),
      },
    ]);
    expect(results.map((r) => r.messageId)).toEqual(["first", "scheduled", "past"]);
    const peeked = await client.peek(queue);
    const stateOf = (id: string) => peeked.find((m) => m.message?.messageId === id)?.state;
    expect(stateOf("first")).toBe("MESSAGE_STATE_ACTIVE");
    expect(stateOf("past")).toBe("MESSAGE_STATE_ACTIVE");
    expect(stateOf("scheduled")).toBe("MESSAGE_STATE_SCHEDULED");
    expect(peeked.find((m) => m.message?.messageId === "scheduled")?.sequenceNumber).toBe(
      results[1]?.sequenceNumber,
    );

    const stream = receiver(queue);
    const early = [await stream.next(), await stream.next()];
    expect(early.map((m) => m.message?.messageId).sort()).toEqual(["first", "past"]);
    const late = await nextBy(stream, dueAt);
    expect(Date.now()).toBeGreaterThanOrEqual(dueAt);
    expect(late.message?.messageId).toBe("scheduled");
  });
});

describe("on a session queue", () => {
  it("keeps the message in its session: peeked there, received there after its time", async () => {
    const queue = uniqueName("sched-session");
    await client.createSessionQueue(queue);
    const [now] = await client.send(queue, [
      { sessionId: "a", messageId: "a-now", body: Buffer.from("1") },
    ]);
    const dueAt = Date.now() + AHEAD_MS;
    const [scheduled] = await schedule(
      client,
      queue,
      [{ sessionId: "a", messageId: "a-later", body: Buffer.from("2") }],
      dueAt,
    );

    const inA = await client.peek(queue, { sessionId: "a" });
    expect(inA.map((m) => [m.sequenceNumber, m.state])).toEqual([
      [now?.sequenceNumber, "MESSAGE_STATE_ACTIVE"],
      [scheduled, "MESSAGE_STATE_SCHEDULED"],
    ]);
    expect(await client.peek(queue, { sessionId: "b" })).toEqual([]);

    const lock = await client.acceptNamed(queue, "a");
    const stream = receiver(queue, { sessionId: lock.sessionId, lockToken: lock.lockToken });
    const first = await stream.next();
    expect(first.message?.messageId).toBe("a-now");
    await client.complete(queue, lock, first.lockToken);

    const second = await nextBy(stream, dueAt);
    expect(Date.now()).toBeGreaterThanOrEqual(dueAt);
    expect(second).toMatchObject({
      state: "MESSAGE_STATE_ACTIVE",
      message: { messageId: "a-later", sessionId: "a" },
    });
    await client.complete(queue, lock, second.lockToken);
  });

  it("offers a session whose only message becomes due to a waiting accept-next", async () => {
    const queue = uniqueName("sched-accept");
    await client.createSessionQueue(queue);
    const dueAt = Date.now() + AHEAD_MS;
    await schedule(client, queue, [{ sessionId: "c", body: Buffer.from("due") }], dueAt);
    const lock = await client.acceptSession(
      queue,
      undefined,
      dueAt - Date.now() + ACTIVATION_BOUND_MS,
    );
    expect(Date.now()).toBeGreaterThanOrEqual(dueAt);
    expect(lock?.sessionId).toBe("c");
  });

  it("never delivers a cancelled message to its session", async () => {
    const queue = uniqueName("sched-session-cancel");
    await client.createSessionQueue(queue);
    const dueAt = Date.now() + AHEAD_MS;
    const [cancelled, kept] = await schedule(
      client,
      queue,
      [
        { sessionId: "s", messageId: "cancelled" },
        { sessionId: "s", messageId: "kept" },
      ],
      dueAt,
    );
    await cancel(queue, [cancelled as string]);
    expect((await client.peek(queue, { sessionId: "s" })).map((m) => m.sequenceNumber)).toEqual([
      kept,
    ]);

    const lock = await client.acceptNamed(queue, "s");
    const stream = receiver(queue, { sessionId: lock.sessionId, lockToken: lock.lockToken });
    const received = await nextBy(stream, dueAt);
    expect(received.message?.messageId).toBe("kept");
    await client.complete(queue, lock, received.lockToken);
    await nothingWithin(stream, CANCELLED_WATCH_MS);
    expect(await client.peek(queue, { sessionId: "s" })).toEqual([]);
  });
});

describe("bad requests", () => {
  it("refuses ScheduleMessages without a time or without messages", async () => {
    const queue = uniqueName("sched-bad");
    await client.createQueue(queue);
    const noTime = await failure(
      client.unary("MessagingService", "ScheduleMessages", {
        entityPath: queue,
        messages: [{ body: Buffer.from("x") }],
      }),
    );
    expect(noTime).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: "scheduled_enqueue_time",
    });
    const noMessages = await failure(schedule(client, queue, [], Date.now() + AHEAD_MS));
    expect(noMessages).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: "messages" });
    const badTime = await failure(
      client.unary("MessagingService", "ScheduleMessages", {
        entityPath: queue,
        messages: [{ body: Buffer.from("x") }],
        scheduledEnqueueTime: { seconds: 1, nanos: 2_000_000_000 },
      }),
    );
    expect(badTime).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: "scheduled_enqueue_time",
    });
    expect(await client.peek(queue)).toEqual([]);
  });

  it("applies the checks of Send: session id, size, unknown entity", async () => {
    const queue = uniqueName("sched-checks");
    await client.createSessionQueue(queue, { maxMessageSizeBytes: 1024 });
    const at = Date.now() + 60_000;
    expect(await failure(schedule(client, queue, [{ body: Buffer.from("x") }], at))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "SESSION_ID_REQUIRED",
    });
    expect(
      await failure(schedule(client, queue, [{ sessionId: "s", body: Buffer.alloc(4096) }], at)),
    ).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: "MESSAGE_TOO_LARGE" });
    expect(
      await failure(
        schedule(client, uniqueName("sched-missing"), [{ body: Buffer.from("x") }], at),
      ),
    ).toMatchObject({ code: grpc.status.NOT_FOUND, reason: "ENTITY_NOT_FOUND" });
    expect(await client.peek(queue)).toEqual([]);
  });

  it("ignores cancelling a number that is not a scheduled message, and refuses an empty list", async () => {
    const queue = uniqueName("sched-cancel-bad");
    await client.createQueue(queue);
    const [active] = await client.send(queue, [{ messageId: "active" }]);
    await cancel(queue, [active?.sequenceNumber as string, "999999"]);
    expect((await client.peek(queue)).map((m) => m.message?.messageId)).toEqual(["active"]);
    expect(await failure(cancel(queue, []))).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: "sequence_numbers",
    });
  });
});

describe("durability", () => {
  let storeDir: string;
  let nats: NatsServerProcess | undefined;
  let killed: BrokerProcess | undefined;
  let survivor: RunningSessionbus | undefined;
  const clients: SessionClient[] = [];

  afterEach(async () => {
    for (const each of clients.splice(0)) each.close();
    await survivor?.close();
    survivor = undefined;
    await killed?.stop();
    killed = undefined;
    await nats?.stop();
    nats = undefined;
    if (storeDir) await rm(storeDir, { recursive: true, force: true });
  });

  it("activates a message scheduled through a broker that was killed since", async () => {
    // A nats-server of its own: no other test's broker can activate the message here.
    storeDir = await mkdtemp(join(tmpdir(), "sessionbus-sched-"));
    nats = await startNatsServer({ storeDir, credentials: "none" });
    killed = await startBrokerProcess({ natsUrl: nats.url });
    const first = new SessionClient(killed.url);
    clients.push(first);
    const queue = uniqueName("sched-durable");
    await first.createQueue(queue);
    const dueAt = Date.now() + AHEAD_MS;
    const [sequence] = await schedule(first, queue, [{ messageId: "survives" }], dueAt);
    killed.kill("SIGKILL");
    await within(killed.exited, 10_000, "the killed broker to exit");

    survivor = await startSessionbus({
      host: "127.0.0.1",
      port: 0,
      natsUrl: nats.url,
      dataDir: "unused",
      natsServerBin: undefined,
    });
    const second = new SessionClient(survivor.url);
    clients.push(second);
    const stream = second.receiveStream({ entityPath: queue });
    try {
      const received = await stream.next(Math.max(1, dueAt - Date.now()) + ACTIVATION_BOUND_MS);
      expect(Date.now()).toBeGreaterThanOrEqual(dueAt);
      expect(received.message?.messageId).toBe("survives");
      expect(BigInt(received.sequenceNumber)).toBeGreaterThan(BigInt(sequence as string));
    } finally {
      stream.cancel();
    }
  });
});
