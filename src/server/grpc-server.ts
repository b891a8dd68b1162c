import {
  create as createMessage,
  type DescMessage,
  fromBinary,
  isMessage,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import type { MethodImplSpec } from "@connectrpc/connect";
import {
  type MethodDefinition,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type StatusObject,
  type UntypedHandleCall,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { InvalidArgumentError, RequestTooLargeError } from "../broker/errors.js";
import { toConnectError } from "./error-mapping.js";
import { GrpcCallContext } from "./grpc-call-context.js";
import { grpcStatusOf, STATUS_DETAILS_TRAILER } from "./grpc-status.js";
import { createReloadableGrpcCredentials } from "./grpc-tls.js";
import { encodingOf } from "./reused-answers.js";
import type { RouteTable } from "./route-table.js";
import type { TlsMaterial } from "./tls-material.js";

/** What `sendStatus` of a server call takes (grpc-js does not export the name). */
type PartialStatusObject = Parameters<ServerInterceptingCallInterface["sendStatus"]>[0];

export interface GrpcServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Largest request message read; a longer one is refused as its length arrives. */
  maxRequestBytes: number;
  /** Aborted when the broker shuts down; handlers' signals follow it. */
  shutdownSignal: AbortSignal;
  /** Serve TLS only, with this certificate (and mutual TLS with its client CA). */
  tls?: TlsMaterial;
}

export interface GrpcServer {
  readonly port: number;
  /** With TLS: new connections get this certificate; open ones keep theirs. */
  setTls(material: TlsMaterial): void;
  /** Stops accepting calls and waits for running ones, for at most `graceMs`; then ends them. */
  close(graceMs: number): Promise<void>;
}

/**
 * Serves every method of `routes` over gRPC with @grpc/grpc-js: the lean path every gRPC
 * client in any language takes. Messages are (de)serialized with protobuf-es from the same
 * descriptors connect-node uses on the HTTP port; errors go through the one error mapping.
 */
export async function startGrpcServer(
  routes: RouteTable,
  options: GrpcServerOptions,
): Promise<GrpcServer> {
  const server = new Server({
    "grpc.max_receive_message_length": options.maxRequestBytes,
    "grpc.max_send_message_length": -1,
    // http2's per-connection memory cap stays off, as grpc-js sets it (a 100 MiB session
    // state is one message): memory per call is bounded by max_receive_message_length.
    interceptors: [detailFrameworkErrors(options.maxRequestBytes)],
  });
  const services = new Map<
    string,
    {
      definition: Record<string, MethodDefinition<unknown, unknown>>;
      impl: UntypedServiceImplementation;
    }
  >();
  for (const spec of routes.methods) {
    const typeName = spec.method.parent.typeName;
    let service = services.get(typeName);
    if (!service) {
      service = { definition: {}, impl: {} };
      services.set(typeName, service);
    }
    service.definition[spec.method.name] = methodDefinition(spec);
    service.impl[spec.method.name] = handlerOf(spec, options.shutdownSignal);
  }
  for (const { definition, impl } of services.values()) {
    server.addService(definition as ServiceDefinition, impl);
  }
  const address = options.host.includes(":") ? `[${options.host}]` : options.host;
  const tls = options.tls === undefined ? undefined : createReloadableGrpcCredentials(options.tls);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `${address}:${options.port}`,
      tls?.credentials ?? ServerCredentials.createInsecure(),
      (error, bound) => (error ? reject(error) : resolve(bound)),
    ),
  );
  return {
    port,
    setTls: (material) => {
      if (tls === undefined) throw new Error("the gRPC port was started without TLS");
      tls.update(material);
    },
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        // forceShutdown does not call tryShutdown's callback: either one resolves.
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/** A request that protobuf could not decode; the handler answers INVALID_ARGUMENT for it. */
class UndecodableRequest {
  constructor(
    readonly schema: DescMessage,
    readonly cause: unknown,
  ) {}

  toError(): InvalidArgumentError {
    const why = this.cause instanceof Error ? this.cause.message : String(this.cause);
    return new InvalidArgumentError(
      "request",
      `The request is not a valid ${this.schema.typeName} message (${why}); check that the client was built from sessionbus's .proto files.`,
    );
  }
}

function methodDefinition(spec: MethodImplSpec): MethodDefinition<unknown, unknown> {
  const { input, output } = spec.method;
  const encode = (value: unknown) => Buffer.from(toBinary(output, asMessage(output, value)));
  return {
    path: `/${spec.method.parent.typeName}/${spec.method.name}`,
    requestStream: spec.kind === "client_streaming" || spec.kind === "bidi_streaming",
    responseStream: spec.kind === "server_streaming" || spec.kind === "bidi_streaming",
    requestSerialize: (value) => Buffer.from(toBinary(input, value as MessageShape<DescMessage>)),
    requestDeserialize: (bytes: Buffer) => {
      // Never throws: grpc-js would answer INTERNAL, which is for bugs only.
      try {
        return fromBinary(input, bytes);
      } catch (error) {
        return new UndecodableRequest(input, error);
      }
    },
    responseSerialize: (value) => encodingOf(value, encode),
    responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
  };
}

/** Handlers return either messages or plain init objects (`{ results: […] }`). */
function asMessage(schema: DescMessage, value: unknown): MessageShape<DescMessage> {
  return isMessage(value, schema)
    ? value
    : createMessage(schema, value as Parameters<typeof createMessage>[1]);
}

function decoded<T>(request: T | UndecodableRequest): T {
  if (request instanceof UndecodableRequest) throw request.toError();
  return request;
}

/** The grpc-js status for whatever a handler threw, through the one error mapping. */
function statusOf(error: unknown): StatusObject {
  return grpcStatusOf(toConnectError(error));
}

function handlerOf(spec: MethodImplSpec, shutdown: AbortSignal): UntypedHandleCall {
  switch (spec.kind) {
    case "unary":
      return (
        call: ServerUnaryCall<unknown, unknown>,
        callback: (error: StatusObject | null, value?: unknown) => void,
      ) => {
        const context = new GrpcCallContext(spec.method, call, shutdown);
        const answer = async () =>
          spec.impl(decoded(call.request as MessageShape<DescMessage>), context);
        answerOnce(answer(), context, callback);
      };
    case "server_streaming":
      return (call: ServerWritableStream<unknown, unknown>) => {
        const context = new GrpcCallContext(spec.method, call, shutdown);
        const responses = (async function* () {
          yield* spec.impl(decoded(call.request as MessageShape<DescMessage>), context);
        })();
        void writeAll(call, responses, context);
      };
    case "client_streaming":
      return (
        call: ServerReadableStream<unknown, unknown>,
        callback: (error: StatusObject | null, value?: unknown) => void,
      ) => {
        const context = new GrpcCallContext(spec.method, call, shutdown);
        answerOnce(spec.impl(readAll(call), context), context, callback);
      };
    case "bidi_streaming":
      return (call: ServerDuplexStream<unknown, unknown>) => {
        const context = new GrpcCallContext(spec.method, call, shutdown);
        void writeAll(call, spec.impl(readAll(call), context), context);
      };
  }
}

/** Answers a call with one response: the handler's, or the status of what it threw. */
function answerOnce(
  response: Promise<unknown>,
  context: GrpcCallContext,
  callback: (error: StatusObject | null, value?: unknown) => void,
): void {
  response.then(
    (value) => {
      context.dispose();
      callback(null, value);
    },
    (error: unknown) => {
      context.dispose();
      callback(statusOf(error));
    },
  );
}

/** The request messages of a client stream; an undecodable one ends it with its error. */
async function* readAll(
  call: ServerReadableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
): AsyncGenerator<MessageShape<DescMessage>> {
  // Leaving early must not destroy the call: its responses are still being written.
  for await (const request of call.iterator({ destroyOnReturn: false })) {
    yield decoded(request as MessageShape<DescMessage> | UndecodableRequest);
  }
}

type WritableCall = ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

/** Writes each response as the client takes them, then the status (OK or the error's). */
async function writeAll(
  call: WritableCall,
  responses: AsyncIterable<unknown>,
  context: GrpcCallContext,
): Promise<void> {
  try {
    for await (const response of responses) {
      if (call.cancelled || call.destroyed) break;
      if (!call.write(response)) await drained(call);
    }
    if (!call.cancelled && !call.destroyed) call.end();
  } catch (error) {
    if (!call.cancelled && !call.destroyed) call.emit("error", statusOf(error));
  } finally {
    context.dispose();
  }
}

/** Resolves when the call can take more (or has ended: the loop then stops). */
function drained(call: WritableCall): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("close", done);
      resolve();
    };
    call.on("drain", done);
    call.on("close", done);
  });
}

/**
 * Statuses grpc-js sends by itself (a request over the size cap) carry no `ErrorDetail`;
 * this gives them the broker's reason, as every other error has. grpc-js calls `sendStatus`
 * of the call it created for those, so that is where the reason is added: one function for
 * every call, set on each. With a closure made per call and stored there instead, young-
 * generation collections promoted 6 to 10 times as much per collection and took 3 to 5
 * times as long (docs/performance.md, "The RPC floor").
 */
function detailFrameworkErrors(maxRequestBytes: number): ServerInterceptor {
  function sendWithReason(this: ServerInterceptingCallInterface, status: PartialStatusObject) {
    const own = Object.getPrototypeOf(this) as ServerInterceptingCallInterface;
    own.sendStatus.call(this, withReason(status, maxRequestBytes));
  }
  return (_method, call: ServerInterceptingCallInterface) => {
    call.sendStatus = sendWithReason;
    return new ServerInterceptingCall(call);
  };
}

const TOO_LARGE =
  /^Received message (?:larger than max \((\d+) vs|that decompresses to a size larger than)/;

function withReason(status: PartialStatusObject, maxRequestBytes: number): PartialStatusObject {
  if (status.code === 0 || status.metadata?.get(STATUS_DETAILS_TRAILER).length) return status;
  const tooLarge = TOO_LARGE.exec(status.details);
  if (!tooLarge) return status;
  const size = tooLarge[1] === undefined ? undefined : Number(tooLarge[1]);
  return statusOf(new RequestTooLargeError(size, maxRequestBytes));
}
