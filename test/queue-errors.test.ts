/**
 * Every refused request gets its documented gRPC code and ErrorDetail reason (semantics §7),
 * and the broker keeps serving afterwards with the stored messages intact.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "./support/grpc-broker.js";
import {
  bodyText,
  failure,
  type ReceivedMessage,
  type SessionbusClient,
  seconds,
  toMs,
  uniqueName,
} from "./support/grpc-client.js";

let running: TestBroker;
let client: SessionbusClient;

/** A queue whose messages must survive every error of this file. */
const canary = uniqueName("errors-canary");
const canaryBodies: string[] = [];

beforeAll(async () => {
  running = await startTestBroker();
  client = running.client;
  await client.createQueue(canary);
  await sendToCanary("before any error");
});

afterAll(async () => {
  await running?.close();
});

async function sendToCanary(body: string): Promise<void> {
  await client.send(canary, [{ body: Buffer.from(body) }]);
  canaryBodies.push(body);
}

// After each refused request: the server still takes a Send, and nothing stored is lost.
afterEach(async (context) => {
  await sendToCanary(`after "${context.task.name}"`);
  const stored = await client.peekAll(canary);
  expect(stored.map(bodyText)).toEqual(canaryBodies);
  await client.deleteCreatedQueues([canary]);
});

function name(prefix: string): string {
  return uniqueName(`errors-${prefix}`);
}

async function nextMessage(queue: string): Promise<ReceivedMessage> {
  const stream = client.receiveStream({ entityPath: queue, prefetch: 1, maxMessages: 1 });
  try {
    const message = await stream.next();
    if (message === undefined) throw new Error(`no message from "${queue}"`);
    return message;
  } finally {
    stream.cancel();
  }
}

describe("invalid entity names", () => {
  const invalid = ["", "-a", "a//b", "a".repeat(261), "a b", "a-", "a/", "ü"];

  it.each(invalid)("CreateQueue(%j) fails INVALID_ARGUMENT on field name", async (bad) => {
    expect(await failure(client.createQueue(bad))).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      reason: "INVALID_ARGUMENT",
      field: "name",
    });
  });

  it.each(invalid)("Send and Peek to %j fail INVALID_ARGUMENT on entity_path", async (bad) => {
    const expected = {
      code: grpc.status.INVALID_ARGUMENT,
      reason: "INVALID_ARGUMENT",
      field: "entity_path",
    };
    expect(await failure(client.send(bad, [{ body: Buffer.from("x") }]))).toMatchObject(expected);
    expect(await failure(client.peek(bad))).toMatchObject(expected);
  });

  it("accepts the longest valid name, 260 characters", async () => {
    const longest = `${name("long")}-${"b".repeat(260)}`.slice(0, 260);
    const created = await client.createQueue(longest);
    expect(created.name).toBe(longest);
    await client.deleteQueue(longest);
  });
});

describe("invalid messages", () => {
  it("refuses a batch with a 129-character message_id, storing none of it", async () => {
    const queue = name("msgid");
    await client.createQueue(queue);
    const refused = await failure(
      client.send(queue, [
        { messageId: "m".repeat(129), body: Buffer.from("bad") },
        { messageId: "fine-1", body: Buffer.from("good") },
        { messageId: "fine-2", body: Buffer.from("good") },
      ]),
    );
    expect(refused).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      reason: "INVALID_ARGUMENT",
      field: "messages[0].message_id",
    });
    expect(await client.peek(queue)).toEqual([]);

    // The same id at 128 characters is fine.
    await client.send(queue, [{ messageId: "m".repeat(128), body: Buffer.from("ok") }]);
    expect(await client.peek(queue)).toHaveLength(1);
  });

  it("refuses a body over the queue's max_message_size with MESSAGE_TOO_LARGE", async () => {
    const queue = name("toolarge");
    await client.createQueue(queue, { maxMessageSizeBytes: 2048 });
    const refused = await failure(
      client.send(queue, [{ body: Buffer.from("small") }, { body: Buffer.alloc(4096, 1) }]),
    );
    expect(refused).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      reason: "MESSAGE_TOO_LARGE",
      field: "messages[1]",
    });
    expect(await client.peek(queue)).toEqual([]);
  });

  it("refuses a body over the default max_message_size of 256 KiB", async () => {
    const queue = name("toolarge-default");
    await client.createQueue(queue);
    const refused = await failure(client.send(queue, [{ body: Buffer.alloc(256 * 1024 + 1) }]));
    expect(refused).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      reason: "MESSAGE_TOO_LARGE",
    });
    expect(await client.peek(queue)).toEqual([]);
  });
});

describe("entities that do not or already exist", () => {
  it("fails every call on an unknown entity with NOT_FOUND / ENTITY_NOT_FOUND", async () => {
    const missing = name("missing");
    const expected = { code: grpc.status.NOT_FOUND, reason: "ENTITY_NOT_FOUND" };
    expect(await failure(client.getQueue(missing))).toMatchObject(expected);
    expect(await failure(client.send(missing, [{ body: Buffer.from("x") }]))).toMatchObject(
      expected,
    );
    expect(await failure(client.peek(missing))).toMatchObject(expected);
    expect(await failure(client.peek(`${missing}/$deadletterqueue`))).toMatchObject(expected);
    expect(await failure(client.updateQueue(missing, { maxDeliveryCount: 3 }))).toMatchObject(
      expected,
    );
    expect(await failure(client.deleteQueue(missing))).toMatchObject(expected);

    const stream = client.receiveStream({ entityPath: missing });
    try {
      expect(await failure(stream.next())).toMatchObject(expected);
      expect((await stream.finalStatus()).code).toBe(grpc.status.NOT_FOUND);
    } finally {
      stream.cancel();
    }
  });

  it("fails to create an existing queue, in another case, with ALREADY_EXISTS", async () => {
    const queue = name("Exists");
    await client.createQueue(queue);
    await client.send(queue, [{ body: Buffer.from("kept") }]);

    expect(await failure(client.createQueue(queue.toUpperCase()))).toMatchObject({
      code: grpc.status.ALREADY_EXISTS,
      reason: "ENTITY_ALREADY_EXISTS",
    });
    expect(await failure(client.createQueue(queue))).toMatchObject({
      code: grpc.status.ALREADY_EXISTS,
      reason: "ENTITY_ALREADY_EXISTS",
    });
    // The existing queue is untouched: name as first written, message still there.
    expect((await client.getQueue(queue.toLowerCase())).name).toBe(queue);
    expect((await client.peek(queue)).map(bodyText)).toEqual(["kept"]);
  });

  it("refuses a lock_duration of 1 s on create, field properties.lock_duration", async () => {
    const queue = name("lock1s");
    expect(await failure(client.createQueue(queue, { lockDuration: seconds(1) }))).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      reason: "INVALID_ARGUMENT",
      field: "properties.lock_duration",
    });
    expect(await failure(client.getQueue(queue))).toMatchObject({
      code: grpc.status.NOT_FOUND,
      reason: "ENTITY_NOT_FOUND",
    });
    // Out of range on the other side, too.
    expect(await failure(client.createQueue(queue, { lockDuration: seconds(301) }))).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: "properties.lock_duration",
    });
  });
});

describe("settling", () => {
  it("fails with a made-up lock token: FAILED_PRECONDITION / MESSAGE_LOCK_LOST", async () => {
    const queue = name("madeup");
    await client.createQueue(queue);
    await client.send(queue, [{ body: Buffer.from("stays") }]);
    const message = await nextMessage(queue);

    const madeUp = "0b6c5f8e-5a7e-4e53-9c43-1d2f5b0e9a11";
    expect(await failure(client.complete(queue, madeUp))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "MESSAGE_LOCK_LOST",
    });
    // All or nothing: a batch with one made-up token settles none of them.
    expect(await failure(client.complete(queue, message.lockToken, madeUp))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "MESSAGE_LOCK_LOST",
    });
    expect((await client.peek(queue)).map(bodyText)).toEqual(["stays"]);
    await client.complete(queue, message.lockToken);
    expect(await client.peek(queue)).toEqual([]);
  });

  it("fails with an expired lock token: MESSAGE_LOCK_LOST", async () => {
    const queue = name("expired");
    await client.createQueue(queue, { lockDuration: seconds(5) });
    await client.send(queue, [{ body: Buffer.from("expires") }]);
    const stream = client.receiveStream({ entityPath: queue, prefetch: 1 });
    try {
      const first = await stream.next();
      if (first === undefined) throw new Error("no message");
      // Its lock is over once the message comes again.
      const again = await stream.next(20_000);
      if (again === undefined) throw new Error("no redelivery");
      expect(Date.now()).toBeGreaterThan(toMs(first.lockedUntil));
      expect(again.deliveryCount).toBe(2);

      expect(await failure(client.complete(queue, first.lockToken))).toMatchObject({
        code: grpc.status.FAILED_PRECONDITION,
        reason: "MESSAGE_LOCK_LOST",
      });
      // The stale token changed nothing: the new delivery still settles.
      await client.complete(queue, again.lockToken);
    } finally {
      stream.cancel();
    }
    expect(await client.peek(queue)).toEqual([]);
  });

  it("fails a second settle of one delivery with MESSAGE_ALREADY_SETTLED", async () => {
    const queue = name("twice");
    await client.createQueue(queue);
    await client.send(queue, [{ body: Buffer.from("once") }, { body: Buffer.from("other") }]);
    const message = await nextMessage(queue);
    await client.complete(queue, message.lockToken);

    for (const disposition of ["DISPOSITION_COMPLETE", "DISPOSITION_ABANDON"] as const) {
      const again = await failure(
        client.settle({ entityPath: queue, lockTokens: [message.lockToken], disposition }),
      );
      expect(again).toMatchObject({
        code: grpc.status.FAILED_PRECONDITION,
        reason: "MESSAGE_ALREADY_SETTLED",
      });
    }
    expect((await client.peek(queue)).map(bodyText)).toEqual(["other"]);
  });
});

describe("session-enabled queues without sessions", () => {
  it("refuses a plain ReceiveStream with FAILED_PRECONDITION / SESSION_REQUIRED", async () => {
    const queue = name("sessions-receive");
    await client.createQueue(queue, { requiresSession: true });
    const stream = client.receiveStream({ entityPath: queue });
    try {
      expect(await failure(stream.next())).toMatchObject({
        code: grpc.status.FAILED_PRECONDITION,
        reason: "SESSION_REQUIRED",
      });
    } finally {
      stream.cancel();
    }
  });

  it("refuses a Send without session_id with SESSION_ID_REQUIRED, storing nothing", async () => {
    const queue = name("sessions-send");
    await client.createQueue(queue, { requiresSession: true });

    expect(await failure(client.send(queue, [{ body: Buffer.from("no session") }]))).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "SESSION_ID_REQUIRED",
    });
    // One message of the batch without a session refuses the whole batch.
    const mixed = await failure(
      client.send(queue, [
        { sessionId: "a", body: Buffer.from("with session") },
        { body: Buffer.from("without") },
      ]),
    );
    expect(mixed).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      reason: "SESSION_ID_REQUIRED",
    });
    expect(await client.peek(queue, 0, 250)).toEqual([]);

    // The empty string is a session id.
    await client.send(queue, [{ sessionId: "", body: Buffer.from("empty session") }]);
    expect(await client.peek(queue, 0, 250)).toHaveLength(1);
  });
});
