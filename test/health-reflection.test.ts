import { fileURLToPath } from "node:url";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  file_grpc_health_v1_health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/ts/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection } from "../gen/ts/grpc/reflection/v1/reflection_pb.js";
import { file_sessionbus_v1_admin_service } from "../gen/ts/sessionbus/v1/admin_service_pb.js";
import { file_sessionbus_v1_error_detail } from "../gen/ts/sessionbus/v1/error_detail_pb.js";
import { file_sessionbus_v1_message } from "../gen/ts/sessionbus/v1/message_pb.js";
import { file_sessionbus_v1_messaging_service } from "../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { file_sessionbus_v1_queue } from "../gen/ts/sessionbus/v1/queue_pb.js";
import { DEFAULT_MAX_REQUEST_BYTES } from "../src/config.js";
import { startGrpcServer } from "../src/server/grpc-server.js";
import {
  createHealthStatus,
  type HealthStatus,
  registerHealthService,
} from "../src/server/health-service.js";
import { registerReflectionService } from "../src/server/reflection-service.js";
import { createRouteTable } from "../src/server/route-table.js";
import { startInProcessBroker } from "./support/grpc-broker.js";

const reflectedFiles = [
  file_sessionbus_v1_admin_service,
  file_sessionbus_v1_messaging_service,
  file_sessionbus_v1_message,
  file_sessionbus_v1_queue,
  file_sessionbus_v1_error_detail,
  file_grpc_health_v1_health,
  file_grpc_reflection_v1_reflection,
];

/** How long any awaited event may take before the test fails instead of hanging. */
const EVENT_TIMEOUT_MS = 5_000;

// The client side knows nothing of our code: grpc-js, with types read from the .proto files.
const packageDefinition = protoLoader.loadSync(
  ["grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto"],
  {
    includeDirs: [fileURLToPath(new URL("../proto", import.meta.url))],
    keepCase: true,
    enums: String,
    defaults: true,
    oneofs: true,
  },
);

interface HealthCheckRequest {
  service: string;
}
interface HealthCheckResponse {
  status: string;
}
interface ReflectionRequest {
  host?: string;
  list_services?: string;
  file_by_filename?: string;
  file_containing_symbol?: string;
}
interface ReflectionResponse {
  valid_host: string;
  message_response?: string;
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

/** A method of the loaded .proto files, typed with the shapes declared above. */
function method<Req extends object, Res>(service: string, name: string) {
  const definition = packageDefinition[service];
  if (definition === undefined || "format" in definition) throw new Error(`no service ${service}`);
  const found = definition[name];
  if (found === undefined) throw new Error(`no method ${service}.${name}`);
  return {
    path: found.path,
    serialize: (value: Req) => found.requestSerialize(value),
    // proto-loader decodes to plain objects; the interfaces above describe their shape.
    deserialize: (bytes: Buffer) => found.responseDeserialize(bytes) as Res,
  };
}

const healthCheck = method<HealthCheckRequest, HealthCheckResponse>(
  "grpc.health.v1.Health",
  "Check",
);
const healthWatch = method<HealthCheckRequest, HealthCheckResponse>(
  "grpc.health.v1.Health",
  "Watch",
);
const reflectionInfo = method<ReflectionRequest, ReflectionResponse>(
  "grpc.reflection.v1.ServerReflection",
  "ServerReflectionInfo",
);

const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/**
 * Serves only health and reflection on a free port with the broker's gRPC server (grpc-js,
 * what grpcurl and Postman talk to); returns a grpc-js client of it.
 */
async function startServer(health: HealthStatus): Promise<grpc.Client> {
  const routes = createRouteTable();
  registerHealthService(routes, health);
  registerReflectionService(routes, reflectedFiles);
  const shutdown = new AbortController();
  const server = await within(
    startGrpcServer(routes, {
      host: "127.0.0.1",
      port: 0,
      maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
      shutdownSignal: shutdown.signal,
    }),
    "the server to listen",
  );
  const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  cleanups.push(async () => {
    client.close();
    shutdown.abort();
    await within(server.close(1_000), "the server to close");
  });
  return client;
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), EVENT_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function check(client: grpc.Client, service: string): Promise<HealthCheckResponse> {
  return within(
    new Promise((resolve, reject) => {
      const { path, serialize, deserialize } = healthCheck;
      client.makeUnaryRequest(path, serialize, deserialize, { service }, (error, response) =>
        error || response === undefined ? reject(error) : resolve(response),
      );
    }),
    `Check("${service}")`,
  );
}

/** Reads a stream message by message, failing when one does not come in time. */
function reader<T>(stream: AsyncIterable<T>) {
  const iterator = stream[Symbol.asyncIterator]();
  return {
    async next(what: string): Promise<T> {
      const result = await within(iterator.next(), what);
      if (result.done) throw new Error(`the stream ended before ${what}`);
      return result.value;
    },
    async end(): Promise<void> {
      const result = await within(iterator.next(), "the end of the stream");
      if (!result.done)
        throw new Error(`expected the end of the stream, got ${String(result.value)}`);
    },
  };
}

function watch(client: grpc.Client, service: string) {
  const { path, serialize, deserialize } = healthWatch;
  const call = client.makeServerStreamRequest(
    path,
    serialize,
    deserialize,
    { service },
    new grpc.Metadata(),
  );
  const status = new Promise<grpc.StatusObject>((resolve) => call.once("status", resolve));
  const messages = reader<HealthCheckResponse>(call);
  return {
    call,
    status: () => within(status, `the status of Watch("${service}")`),
    nextStatus: async () => (await messages.next(`a status of "${service}"`)).status,
    end: () => messages.end(),
  };
}

/** Sends `requests` on one ServerReflectionInfo stream and returns the answers in order. */
async function reflect(
  client: grpc.Client,
  requests: ReflectionRequest[],
  path = reflectionInfo.path,
): Promise<ReflectionResponse[]> {
  const { serialize, deserialize } = reflectionInfo;
  const call = client.makeBidiStreamRequest(path, serialize, deserialize, new grpc.Metadata());
  const responses = reader<ReflectionResponse>(call);
  const answers: ReflectionResponse[] = [];
  for (const request of requests) {
    call.write(request);
    answers.push(await responses.next(`the answer to ${JSON.stringify(request)}`));
  }
  call.end();
  await responses.end();
  return answers;
}

function decodeFiles(response: ReflectionResponse): FileDescriptorProto[] {
  const encoded = response.file_descriptor_response?.file_descriptor_proto;
  if (encoded === undefined) throw new Error(`no file descriptors: ${JSON.stringify(response)}`);
  return encoded.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
}

describe("grpc.health.v1.Health", () => {
  let health: HealthStatus;
  let client: grpc.Client;

  beforeAll(async () => {
    health = createHealthStatus();
    client = await startServer(health);
  });

  it('answers SERVING to Check("")', async () => {
    expect(await check(client, "")).toEqual({ status: "SERVING" });
  });

  it("fails Check of an unknown service with NOT_FOUND", async () => {
    await expect(check(client, "nope")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("watches an unknown service until it appears, and stops when the client cancels", async () => {
    const service = "sessionbus.v1.MessagingService";
    const unsubscribed = new Promise<void>((resolve) => {
      const original = health.onChange;
      // Spy on the subscription of the Watch call, to see it let go after the cancel.
      health.onChange = (listener) => {
        const unsubscribe = original(listener);
        return () => {
          unsubscribe();
          resolve();
        };
      };
    });
    const watching = watch(client, service);

    expect(await watching.nextStatus()).toBe("SERVICE_UNKNOWN");
    health.set(service, ServingStatus.SERVING);
    expect(await watching.nextStatus()).toBe("SERVING");
    health.set(service, ServingStatus.SERVING); // no change, so nothing is sent
    health.set(service, ServingStatus.NOT_SERVING);
    expect(await watching.nextStatus()).toBe("NOT_SERVING");

    watching.call.cancel();
    expect((await watching.status()).code).toBe(grpc.status.CANCELLED);
    await within(unsubscribed, "the server to end the Watch");
  });

  it("sends SERVING, then NOT_SERVING and ends the Watch on shutdown", async () => {
    // A server of its own: shutdown is for good.
    const ending = createHealthStatus();
    const endingClient = await startServer(ending);
    const watching = watch(endingClient, "");

    expect(await watching.nextStatus()).toBe("SERVING");
    ending.shutdown();
    expect(await watching.nextStatus()).toBe("NOT_SERVING");
    await watching.end();
    expect((await watching.status()).code).toBe(grpc.status.OK);
    expect(await check(endingClient, "")).toEqual({ status: "NOT_SERVING" });
  });
});

describe("grpc.reflection.v1.ServerReflection", () => {
  let client: grpc.Client;

  beforeAll(async () => {
    client = await startServer(createHealthStatus());
  });

  it("lists the services of the reflected files", async () => {
    const [answer] = await reflect(client, [{ host: "sessionbus", list_services: "" }]);
    const names = answer?.list_services_response?.service.map((s) => s.name);
    expect(answer?.valid_host).toBe("sessionbus");
    expect(names?.sort()).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "sessionbus.v1.AdminService",
      "sessionbus.v1.MessagingService",
    ]);
  });

  it("returns the file containing a service with all its imports", async () => {
    const [answer] = await reflect(client, [
      { file_containing_symbol: "sessionbus.v1.MessagingService" },
    ]);
    if (answer === undefined) throw new Error("no answer");
    const files = decodeFiles(answer);
    const names = files.map((file) => file.name);

    expect(names[0]).toBe("sessionbus/v1/messaging_service.proto");
    expect(names).toEqual(
      expect.arrayContaining([
        "sessionbus/v1/message.proto",
        "google/protobuf/duration.proto",
        "google/protobuf/timestamp.proto",
      ]),
    );
    // Complete: the files resolve on their own, imports before importers.
    const registry = createFileRegistry(
      create(FileDescriptorSetSchema, { file: [...files].reverse() }),
    );
    expect(registry.getService("sessionbus.v1.MessagingService")?.methods.length).toBeGreaterThan(
      0,
    );
  });

  it("finds methods, messages and leading-dot names, and reports unknown ones", async () => {
    const answers = await reflect(client, [
      { file_containing_symbol: ".sessionbus.v1.MessagingService" },
      { file_containing_symbol: "sessionbus.v1.AdminService.CreateQueue" },
      { file_containing_symbol: "google.protobuf.Timestamp" },
      { file_containing_symbol: "sessionbus.v1.Nope" },
      { file_by_filename: "grpc/health/v1/health.proto" },
      { file_by_filename: "nope.proto" },
    ]);

    const firstFile = (answer: ReflectionResponse | undefined) =>
      answer && decodeFiles(answer)[0]?.name;
    expect(firstFile(answers[0])).toBe("sessionbus/v1/messaging_service.proto");
    expect(firstFile(answers[1])).toBe("sessionbus/v1/admin_service.proto");
    expect(firstFile(answers[2])).toBe("google/protobuf/timestamp.proto");
    expect(answers[3]?.error_response?.error_code).toBe(grpc.status.NOT_FOUND);
    expect(firstFile(answers[4])).toBe("grpc/health/v1/health.proto");
    expect(answers[5]?.error_response?.error_code).toBe(grpc.status.NOT_FOUND);
  });

  it("answers on the grpc.reflection.v1alpha path too", async () => {
    const v1alphaPath = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
    const [answer] = await reflect(client, [{ list_services: "" }], v1alphaPath);
    expect(answer?.list_services_response?.service.map((s) => s.name)).toContain(
      "sessionbus.v1.MessagingService",
    );
  });
});

describe("the broker as started by startSessionbus", () => {
  let client: grpc.Client;

  beforeAll(async () => {
    const broker = await startInProcessBroker();
    client = new grpc.Client(`127.0.0.1:${broker.port}`, grpc.credentials.createInsecure());
    cleanups.push(async () => {
      client.close();
      await broker.close();
    });
  });

  it("answers SERVING to a health check", async () => {
    expect((await check(client, "")).status).toBe("SERVING");
  });

  it("lists both sessionbus services through reflection", async () => {
    const [answer] = await reflect(client, [{ host: "", list_services: "" }]);
    const names = answer?.list_services_response?.service.map((s) => s.name) ?? [];
    expect(names).toContain("sessionbus.v1.AdminService");
    expect(names).toContain("sessionbus.v1.MessagingService");
  });
});
