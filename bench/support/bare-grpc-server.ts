/**
 * The yardstick of the rpcFloor scenario, run as a process of its own (`node --import tsx
 * bench/support/bare-grpc-server.ts`): a @grpc/grpc-js server with nothing but
 * `grpc.health.v1.Health/Check`, its messages (de)serialized with protobuf-es from the
 * descriptors in gen/ts as the broker's gRPC port does. What the broker spends per call
 * beyond this is the broker's own. Prints one line with its address once it listens; ends
 * on SIGTERM or when its parent goes away (stdin closes).
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Server, ServerCredentials, type ServiceDefinition, status } from "@grpc/grpc-js";
import {
  type HealthCheckRequest,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/ts/grpc/health/v1/health_pb.js";

/** processes.ts waits for a stdout line that starts with this, followed by host:port. */
const LISTENING_PREFIX = "bare-grpc-server listening on ";

const HOST = "127.0.0.1";

const definition: ServiceDefinition = {
  check: {
    path: "/grpc.health.v1.Health/Check",
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: HealthCheckRequest) =>
      Buffer.from(toBinary(HealthCheckRequestSchema, value)),
    requestDeserialize: (bytes: Buffer) => fromBinary(HealthCheckRequestSchema, bytes),
    responseSerialize: (value: { status: ServingStatus }) =>
      Buffer.from(toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, value))),
    responseDeserialize: (bytes: Buffer) => fromBinary(HealthCheckResponseSchema, bytes),
  },
};

/** The same lookup the broker's health service makes: "" is the whole server. */
const statuses = new Map<string, ServingStatus>([["", ServingStatus.SERVING]]);

const server = new Server();
server.addService(definition, {
  check: (
    call: { request: HealthCheckRequest },
    callback: (
      error: { code: status; details: string } | null,
      value?: { status: ServingStatus },
    ) => void,
  ) => {
    const found = statuses.get(call.request.service);
    if (found === undefined) {
      callback({ code: status.NOT_FOUND, details: `unknown service "${call.request.service}"` });
      return;
    }
    callback(null, { status: found });
  },
});
server.bindAsync(`${HOST}:0`, ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    console.error(`bare-grpc-server: ${error.message}`);
    process.exit(1);
  }
  console.log(`${LISTENING_PREFIX}${HOST}:${port}`);
});

const stop = () => server.tryShutdown(() => process.exit(0));
process.once("SIGTERM", stop);
// The parent holds our stdin open; when it dies without killing us, we go too.
process.stdin.on("end", stop);
process.stdin.resume();
