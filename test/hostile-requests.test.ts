/**
 * Requests built to hurt the broker — oversized frames and requests, durations at the edge
 * of int64, undecodable bytes, racing admin calls — each get a clear status with a reason,
 * and the broker serves on. Error texts reach every kind of client as written.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { MessagingService } from "../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { FrameStream } from "./support/frame-stream.js";
import {
  errorReason,
  failure,
  type GrpcClient,
  SessionbusClient,
  uniqueName,
} from "./support/grpc-client.js";
import { type SessionTestBroker, startSessionBroker } from "./support/session-broker.js";
import { rootToken, rootTokenInterceptor } from "./support/test-credentials.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const INT64_MAX = "9223372036854775807";

let running: SessionTestBroker;
beforeAll(async () => {
  running = await startSessionBroker();
});
afterAll(async () => {
  await running?.close();
});

/** The broker still serves: a queue is created, a message sent and peeked. */
async function stillServes(
  client: GrpcClient & { peekAll(queue: string): Promise<unknown[]> },
): Promise<void> {
  const queue = uniqueName("alive");
  await client.createQueue(queue);
  await client.send(queue, [{ body: Buffer.from("alive") }]);
  expect((await client.peekAll(queue)).length).toBe(1);
}

describe("one request never takes the broker down", () => {
  it("answers a SendStream frame with a 1 MiB path and 5,000 messages with its error, and goes on", async () => {
    const { client } = running;
    const queue = uniqueName("frame");
    await client.createQueue(queue);
    const stream = new FrameStream<object, { error: { code: number } | null }>(
      client.openDuplex("MessagingService", "SendStream"),
    );
    const hostile = stream.write({
      entityPath: "q".repeat(1024 * 1024),
      messages: Array.from({ length: 5000 }, () => ({ body: Buffer.from("x") })),
    });
    const fine = stream.write({ entityPath: queue, messages: [{ body: Buffer.from("1") }] });
    const [refused, stored] = await Promise.all([hostile, fine]);
    expect(refused.error).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(stored.error).toBeNull();
    await stream.end();
    await stillServes(client);
  });

  describe("a request over the size cap", () => {
    let broker: BrokerProcess;
    beforeAll(async () => {
      broker = await startBrokerProcess({ natsUrl: inject("natsUrl") });
    });
    afterAll(async () => {
      await broker?.stop();
    });

    it("is refused with RESOURCE_EXHAUSTED / REQUEST_TOO_LARGE before it is read whole", async () => {
      const client = new SessionbusClient(broker.url);
      try {
        // 300 MB of a SetSessionState request body: far over the 100 MiB + 64 KiB default.
        const request = Buffer.alloc(300 * 1000 * 1000, 7);
        const refused = errorReason(
          await client
            .rawUnary("/sessionbus.v1.MessagingService/SetSessionState", request, 120_000)
            .then(
              () => new Error("the request was accepted"),
              (error: unknown) => error,
            ),
        );
        expect(refused).toMatchObject({
          codeName: "RESOURCE_EXHAUSTED",
          reason: "REQUEST_TOO_LARGE",
        });
        expect(refused.message).toMatch(/300000000 bytes.*104923136-byte limit/);
        // Read as it arrived, the request never sat in the broker's memory.
        const peakKiB = Number(
          /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${broker.pid}/status`, "utf8"))?.[1],
        );
        expect(peakKiB * 1024).toBeLessThan(500 * 1000 * 1000);
        await stillServes(client);
      } finally {
        client.close();
      }
    }, 180_000);
  });
});

describe("status codes of malformed requests", () => {
  it("answers requests naming megabyte-long values with short errors, on a connection that survives", async () => {
    const { client } = running;
    const huge = "😀".repeat(500_000);
    const queue = uniqueName("long-values");
    await client.createSessionQueue(queue);
    const refusals = await Promise.all([
      failure(client.unary("AdminService", "GetQueue", { name: huge })),
      failure(client.unary("AdminService", "CreateQueue", { name: `${huge}/x` })),
      failure(client.unary("MessagingService", "Peek", { entityPath: queue, sessionId: huge })),
      failure(
        client.unary("MessagingService", "AcceptSession", { entityPath: queue, sessionId: huge }),
      ),
      // A check that names the entity before the entity path itself is checked.
      failure(
        client.unary("MessagingService", "AcceptSession", {
          entityPath: "x".repeat(100_000),
          maxWait: { seconds: INT64_MAX },
        }),
      ),
      failure(
        client.unary("MessagingService", "Send", {
          entityPath: queue,
          messages: [{ sessionId: "s", messageId: huge, body: Buffer.from("x") }],
        }),
      ),
      failure(
        client.unary("AdminService", "CreateRule", {
          topicName: huge,
          subscriptionName: "s",
          rule: { name: huge, sqlFilter: { expression: huge } },
        }),
      ),
    ]);
    for (const refused of refusals) {
      expect(refused.codeName).toBe("INVALID_ARGUMENT");
      expect(refused.message.length).toBeLessThanOrEqual(2048);
      expect((refused.sessionId ?? "").length).toBeLessThanOrEqual(300);
      expect((refused.entityPath ?? "").length).toBeLessThanOrEqual(300);
    }
    // The same client, on the same connection, goes on.
    await stillServes(client);
  });

  it("refuses an undecodable request body with INVALID_ARGUMENT and an ErrorDetail", async () => {
    // Field 1 (entity_path) as a length-delimited value whose length runs past the end.
    const garbage = Buffer.from([0x0a, 0xff, 0x01, 0x41]);
    for (const path of [
      "/sessionbus.v1.MessagingService/Send",
      "/sessionbus.v1.AdminService/GetQueue",
    ]) {
      const refused = await failure(running.client.rawUnary(path, garbage));
      expect(refused, path).toMatchObject({
        codeName: "INVALID_ARGUMENT",
        reason: "INVALID_ARGUMENT",
        field: "request",
      });
    }
    await stillServes(running.client);
  });

  it("refuses a max_wait of 2^63−1 s with INVALID_ARGUMENT on max_wait", async () => {
    const queue = uniqueName("wait");
    await running.client.createSessionQueue(queue);
    const refused = await failure(
      running.client.unary("MessagingService", "AcceptSession", {
        entityPath: queue,
        maxWait: { seconds: INT64_MAX },
      }),
    );
    expect(refused).toMatchObject({ codeName: "INVALID_ARGUMENT", field: "max_wait" });
    const tooLong = await failure(
      running.client.unary("MessagingService", "AcceptSession", {
        entityPath: queue,
        maxWait: { seconds: 25 * 3600 },
      }),
    );
    expect(tooLong).toMatchObject({ codeName: "INVALID_ARGUMENT", field: "max_wait" });
    expect(tooLong.message).toContain("at most 86400 s");
  });

  it("refuses a time_to_live of 2^63−1 s; one of 10,000 years means the message never expires", async () => {
    const queue = uniqueName("ttl");
    await running.client.createQueue(queue);
    const refused = await failure(
      running.client.unary("MessagingService", "Send", {
        entityPath: queue,
        messages: [{ body: Buffer.from("x"), timeToLive: { seconds: INT64_MAX } }],
      }),
    );
    expect(refused).toMatchObject({
      codeName: "INVALID_ARGUMENT",
      field: "messages[0].time_to_live",
    });
    await running.client.unary("MessagingService", "Send", {
      entityPath: queue,
      messages: [{ body: Buffer.from("y"), timeToLive: { seconds: 315_576_000_000 } }],
    });
    const [peeked] = await running.client.peekAll(queue);
    expect(peeked?.expiresAt?.seconds).toBe("253402300799");
  });

  it("lets ten concurrent UpdateQueue calls on one queue all succeed", async () => {
    const queue = uniqueName("race");
    await running.client.createQueue(queue);
    const updates = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        running.client.unary("AdminService", "UpdateQueue", {
          name: queue,
          properties: { maxDeliveryCount: i + 1 },
        }),
      ),
    );
    const failed = updates.flatMap((u) => (u.status === "rejected" ? [errorReason(u.reason)] : []));
    expect(failed).toEqual([]);
  });
});

describe("error texts", () => {
  const text =
    "max_wait is not a valid duration (seconds within ±315,576,000,000, nanos within ±999,999,999 and of the same sign).";
  const badWait = (queue: string) => ({ entityPath: queue, maxWait: { seconds: INT64_MAX } });

  it("reach a grpc-js client as written, not percent-encoded", async () => {
    const queue = uniqueName("text");
    await running.client.createSessionQueue(queue);
    const refused = await failure(
      running.client.unary("MessagingService", "AcceptSession", badWait(queue)),
    );
    expect(refused.message).toBe(text);
  });

  it("reach Connect and gRPC-Web clients on the HTTP port as written", async () => {
    const queue = uniqueName("text");
    await running.client.createSessionQueue(queue);
    const baseUrl = running.broker.httpUrl;
    for (const transport of [
      createConnectTransport({ baseUrl, interceptors: [rootTokenInterceptor], httpVersion: "2" }),
      createGrpcWebTransport({ baseUrl, interceptors: [rootTokenInterceptor], httpVersion: "2" }),
    ]) {
      const messaging = createClient(MessagingService, transport);
      const error = await messaging
        .acceptSession({ entityPath: queue, maxWait: { seconds: BigInt(INT64_MAX) } })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).rawMessage).toBe(text);
    }
  });

  it("reach a Python grpcio client as written", async () => {
    const queue = uniqueName("text");
    await running.client.createSessionQueue(queue);
    const script = `
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, ${JSON.stringify(join(projectRoot, "gen/python"))})
import grpc
from google.protobuf.duration_pb2 import Duration
from sessionbus.v1 import messaging_service_pb2, messaging_service_pb2_grpc
stub = messaging_service_pb2_grpc.MessagingServiceStub(grpc.insecure_channel(sys.argv[1]))
try:
    stub.AcceptSession(messaging_service_pb2.AcceptSessionRequest(
        entity_path=sys.argv[2], max_wait=Duration(seconds=${INT64_MAX})), timeout=30,
        metadata=(("authorization", sys.argv[3]),))
except grpc.RpcError as error:
    sys.stdout.write(error.code().name + "\\n" + error.details())
`;
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(
        "/usr/bin/python3",
        ["-c", script, `127.0.0.1:${running.broker.port}`, queue, rootToken()],
        { stdio: ["ignore", "pipe", "pipe"], timeout: 45_000, killSignal: "SIGKILL" },
      );
      let out = "";
      let err = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
      });
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        err += chunk;
      });
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(err))));
    });
    expect(output).toBe(`INVALID_ARGUMENT\n${text}`);
  }, 60_000);
});
