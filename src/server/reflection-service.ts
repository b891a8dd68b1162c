import {
  create,
  createFileRegistry,
  type DescEnum,
  type DescExtension,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type DescMethodBiDiStreaming,
  type DescService,
  type FileRegistry,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import {
  type ExtensionRequest,
  file_grpc_reflection_v1_reflection,
  ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../../gen/ts/grpc/reflection/v1/reflection_pb.js";
import type { RouteRegistry } from "./route-table.js";

type ReflectionResponse = MessageInitShape<typeof ServerReflectionResponseSchema>;
type MessageResponse = ReflectionResponse["messageResponse"];
type RegistryType = DescMessage | DescEnum | DescExtension | DescService;
type ReflectionMethod = DescMethodBiDiStreaming<
  typeof ServerReflectionRequestSchema,
  typeof ServerReflectionResponseSchema
>;

/** What the reflection service answers from, built once per registration. */
interface ReflectionIndex {
  /** The given files and everything they import. */
  readonly registry: FileRegistry;
  /** Fully-qualified names of the services declared in the given files. */
  readonly services: readonly string[];
  /** Fully-qualified name of every type, method and field -> the file declaring it. */
  readonly symbols: ReadonlyMap<string, DescFile>;
}

/**
 * Serves grpc.reflection.v1.ServerReflection over `files` and their imports, and the same
 * implementation as grpc.reflection.v1alpha.ServerReflection for clients that only speak that.
 */
export function registerReflectionService(router: RouteRegistry, files: DescFile[]): void {
  const index = createReflectionIndex(files);
  const serverReflectionInfo = (requests: AsyncIterable<ServerReflectionRequest>) =>
    respondToAll(index, requests);
  router.service(ServerReflection, { serverReflectionInfo });
  router.rpc(v1alphaMethod(), serverReflectionInfo);
}

async function* respondToAll(
  index: ReflectionIndex,
  requests: AsyncIterable<ServerReflectionRequest>,
): AsyncGenerator<ReflectionResponse> {
  for await (const request of requests) {
    yield {
      validHost: request.host,
      originalRequest: request,
      messageResponse: respond(index, request),
    };
  }
}

function respond(index: ReflectionIndex, request: ServerReflectionRequest): MessageResponse {
  const { case: kind, value } = request.messageRequest;
  switch (kind) {
    case "listServices":
      return listServices(index);
    case "fileByFilename":
      return fileResponse(index.registry.getFile(value), `file "${value}"`);
    case "fileContainingSymbol":
      return fileResponse(index.symbols.get(value.replace(/^\./, "")), `symbol "${value}"`);
    case "fileContainingExtension":
      return fileContainingExtension(index, value);
    case "allExtensionNumbersOfType":
      return allExtensionNumbersOfType(index, value.replace(/^\./, ""));
    case undefined:
      return errorResponse(Code.InvalidArgument, "the request names no message_request");
  }
}

function listServices(index: ReflectionIndex): MessageResponse {
  const service = index.services.map((name) => ({ name }));
  return { case: "listServicesResponse", value: { service } };
}

function fileResponse(file: DescFile | undefined, what: string): MessageResponse {
  if (file === undefined) return errorResponse(Code.NotFound, `${what} not found`);
  // Imports go along (well-known types too): a client cannot decode a file without them.
  const fileDescriptorProto = withImports(file).map((f) =>
    toBinary(FileDescriptorProtoSchema, f.proto),
  );
  return { case: "fileDescriptorResponse", value: { fileDescriptorProto } };
}

function fileContainingExtension(
  index: ReflectionIndex,
  request: ExtensionRequest,
): MessageResponse {
  const extendee = index.registry.getMessage(request.containingType.replace(/^\./, ""));
  const extension = extendee
    ? index.registry.getExtensionFor(extendee, request.extensionNumber)
    : undefined;
  return fileResponse(
    extension?.file,
    `extension ${request.extensionNumber} of "${request.containingType}"`,
  );
}

function allExtensionNumbersOfType(index: ReflectionIndex, typeName: string): MessageResponse {
  if (index.registry.getMessage(typeName) === undefined) {
    return errorResponse(Code.NotFound, `message "${typeName}" not found`);
  }
  const extensionNumber: number[] = [];
  for (const desc of index.registry) {
    if (desc.kind === "extension" && desc.extendee.typeName === typeName) {
      extensionNumber.push(desc.number);
    }
  }
  return {
    case: "allExtensionNumbersResponse",
    value: { baseTypeName: typeName, extensionNumber },
  };
}

function errorResponse(code: Code, errorMessage: string): MessageResponse {
  // Connect's Code values are the gRPC status codes.
  return { case: "errorResponse", value: { errorCode: code, errorMessage } };
}

function createReflectionIndex(files: readonly DescFile[]): ReflectionIndex {
  // A FileDescriptorSet must list every file after the files it imports.
  const fileSet = create(FileDescriptorSetSchema, {
    file: importsFirst(files).map((f) => f.proto),
  });
  const registry = createFileRegistry(fileSet);
  const services = new Set(files.flatMap((file) => file.services.map((s) => s.typeName)));
  return { registry, services: [...services], symbols: indexSymbols(registry) };
}

/** `file` first, then everything it imports, transitively. */
function withImports(file: DescFile): DescFile[] {
  return importsFirst([file]).reverse();
}

/** `files` and everything they import, transitively, each once, every file after its imports. */
function importsFirst(files: readonly DescFile[]): DescFile[] {
  const visited = new Set<string>();
  const order: DescFile[] = [];
  const visit = (file: DescFile): void => {
    if (visited.has(file.proto.name)) return;
    // Marked before the recursion: import cycles are invalid, but must not hang us.
    visited.add(file.proto.name);
    for (const dependency of file.dependencies) visit(dependency);
    order.push(file);
  };
  for (const file of files) visit(file);
  return order;
}

function indexSymbols(registry: FileRegistry): Map<string, DescFile> {
  const symbols = new Map<string, DescFile>();
  for (const desc of registry) {
    symbols.set(desc.typeName, desc.file);
    for (const member of memberNames(desc)) symbols.set(`${desc.typeName}.${member}`, desc.file);
  }
  return symbols;
}

function memberNames(desc: RegistryType): string[] {
  switch (desc.kind) {
    case "service":
      return desc.methods.map((method) => method.name);
    case "message":
      return [...desc.fields, ...desc.oneofs].map((member) => member.name);
    default:
      return [];
  }
}

/**
 * grpc.reflection.v1alpha is wire-identical to v1, so instead of a second .proto file the
 * alias is a descriptor built here whose method takes and returns the v1 messages.
 */
function v1alphaMethod(): ReflectionMethod {
  const v1 = file_grpc_reflection_v1_reflection;
  const proto = create(FileDescriptorProtoSchema, {
    name: "grpc/reflection/v1alpha/reflection.proto",
    package: "grpc.reflection.v1alpha",
    dependency: [v1.proto.name],
    syntax: "proto3",
    service: [
      {
        name: "ServerReflection",
        method: [
          {
            name: "ServerReflectionInfo",
            inputType: `.${ServerReflectionRequestSchema.typeName}`,
            outputType: `.${ServerReflectionResponseSchema.typeName}`,
            clientStreaming: true,
            serverStreaming: true,
          },
        ],
      },
    ],
  });
  const registry = createFileRegistry(proto, (name) => (name === v1.proto.name ? v1 : undefined));
  const method = registry.getService("grpc.reflection.v1alpha.ServerReflection")?.methods[0];
  if (method === undefined || !isReflectionMethod(method)) {
    throw new Error("could not build the grpc.reflection.v1alpha.ServerReflection descriptor");
  }
  return method;
}

function isReflectionMethod(method: DescMethod): method is ReflectionMethod {
  return (
    method.methodKind === "bidi_streaming" &&
    method.input === ServerReflectionRequestSchema &&
    method.output === ServerReflectionResponseSchema
  );
}
