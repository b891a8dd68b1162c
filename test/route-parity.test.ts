/**
 * Both ports serve every method of every service: the gRPC port (grpc-js) and the HTTP port
 * (Connect and gRPC-Web, connect-node). Each method is called once on each with an empty
 * request; any answer but "no such method" shows it is served.
 */
import http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health } from "../gen/ts/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../gen/ts/grpc/reflection/v1/reflection_pb.js";
import { AdminService } from "../gen/ts/sessionbus/v1/admin_service_pb.js";
import { MessagingService } from "../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { startTestBroker, type TestBroker } from "./support/grpc-broker.js";

const METHODS = [AdminService, MessagingService, Health, ServerReflection].flatMap(
  (service) => service.methods,
);
const DEADLINE_MS = 2_000;

let running: TestBroker;
beforeAll(async () => {
  running = await startTestBroker();
});
afterAll(async () => {
  await running?.close();
});

const pathOf = (method: DescMethod) => `/${method.parent.typeName}/${method.name}`;

/** The gRPC status of one call with an empty request on the gRPC port. */
function grpcCode(client: grpc.Client, method: DescMethod): Promise<number> {
  const identity = (bytes: Buffer) => bytes;
  const options = { deadline: Date.now() + DEADLINE_MS };
  const empty = Buffer.alloc(0);
  return new Promise((resolve) => {
    const onStatus = (status: grpc.StatusObject) => resolve(status.code);
    if (method.methodKind === "unary") {
      client
        .makeUnaryRequest(
          pathOf(method),
          identity,
          identity,
          empty,
          new grpc.Metadata(),
          options,
          () => undefined,
        )
        .on("status", onStatus);
    } else if (method.methodKind === "server_streaming") {
      const call = client.makeServerStreamRequest(
        pathOf(method),
        identity,
        identity,
        empty,
        new grpc.Metadata(),
        options,
      );
      call.on("data", () => call.cancel());
      call.on("error", () => undefined);
      call.on("status", onStatus);
    } else {
      const call = client.makeBidiStreamRequest(
        pathOf(method),
        identity,
        identity,
        new grpc.Metadata(),
        options,
      );
      call.on("data", () => undefined);
      call.on("error", () => undefined);
      call.on("status", onStatus);
      call.end();
    }
  });
}

/** The HTTP status of one gRPC-Web call with an empty request (an empty envelope). */
function grpcWebHttpStatus(session: http2.ClientHttp2Session, method: DescMethod): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": pathOf(method),
      "content-type": "application/grpc-web+proto",
      "grpc-timeout": `${DEADLINE_MS}m`,
    });
    stream.on("response", (headers) => {
      resolve(Number(headers[":status"]));
      stream.close();
    });
    stream.on("error", reject);
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

describe("both ports", () => {
  it("serve every method of every service on the gRPC port", async () => {
    const client = new grpc.Client(
      running.broker.url.replace(/^http:\/\//, ""),
      grpc.credentials.createInsecure(),
    );
    try {
      const unimplemented: string[] = [];
      for (const method of METHODS) {
        if ((await grpcCode(client, method)) === grpc.status.UNIMPLEMENTED) {
          unimplemented.push(pathOf(method));
        }
      }
      expect(unimplemented).toEqual([]);
      // The check itself can fail: a method that does not exist is UNIMPLEMENTED.
      const missing = { ...METHODS[0], name: "NoSuchMethod" } as DescMethod;
      expect(await grpcCode(client, missing)).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
    }
  });

  it("serve every method of every service on the HTTP port (gRPC-Web)", async () => {
    const session = http2.connect(running.broker.httpUrl);
    try {
      const notFound: string[] = [];
      for (const method of METHODS) {
        if ((await grpcWebHttpStatus(session, method)) === 404) notFound.push(pathOf(method));
      }
      expect(notFound).toEqual([]);
      const missing = { ...METHODS[0], name: "NoSuchMethod" } as DescMethod;
      expect(await grpcWebHttpStatus(session, missing)).toBe(404);
    } finally {
      session.close();
    }
  });
});
