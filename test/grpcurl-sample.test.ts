/**
 * The grpcurl block of docs/api.md, line by line, against a broker's gRPC port. grpcurl itself is
 * not packaged for Debian and this machine has no other network than apt and npm, so each
 * `grpcurl` line is carried out here the way grpcurl does it: the services are listed and
 * the method's descriptors fetched through server reflection (nothing is taken from gen/ or
 * proto/), the `-d` JSON is encoded with those descriptors, `-H` headers become metadata,
 * and the answer is decoded back to JSON. The token comes from the CLI, `sessionbus token`,
 * as the block says.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import {
  create,
  createFileRegistry,
  type DescMethod,
  type FileRegistry,
  fromBinary,
  fromJson,
  type JsonValue,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../gen/ts/grpc/reflection/v1/reflection_pb.js";
import type { RunningSessionbus } from "../src/app.js";
import { docBlock } from "./support/doc-samples.js";
import { startInProcessBroker } from "./support/grpc-broker.js";
import { testConnectionString } from "./support/test-credentials.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const CALL_DEADLINE_MS = 30_000;
const CLI_TIMEOUT_MS = 90_000;

/** The sh block right after `<!-- sample: grpcurl -->`, continuation lines joined. */
function grpcurlBlock(): string[] {
  return docBlock("docs/api.md", "sample: grpcurl")
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
}

/** Splits a shell line into words: '…' verbatim, "…" with $NAME expanded from `vars`. */
function words(line: string, vars: Record<string, string>): string[] {
  const found: string[] = [];
  const pattern = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (const match of line.matchAll(pattern)) {
    const [, single, double, bare] = match;
    if (single !== undefined) found.push(single);
    else
      found.push(
        (double ?? bare ?? "").replace(/\$([A-Z_]+)/g, (_, name: string) => vars[name] ?? ""),
      );
  }
  return found;
}

/** What `sessionbus token` prints, run as docs/api.md runs it. */
function cliToken(env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("npx", ["sessionbus", "token"], {
      cwd: projectRoot,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: CLI_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      err += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(out.trim()) : reject(new Error(`sessionbus token: ${err}`)),
    );
  });
}

/** A grpcurl stand-in over one grpc-js connection: reflection, then the call. */
class ReflectingClient {
  private readonly client: grpc.Client;

  constructor(address: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
  }

  close(): void {
    this.client.close();
  }

  /** One ServerReflectionInfo exchange. */
  private reflect(request: ServerReflectionRequest["messageRequest"]) {
    const path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
    const call = this.client.makeBidiStreamRequest(
      path,
      (value: ServerReflectionRequest) =>
        Buffer.from(toBinary(ServerReflectionRequestSchema, value)),
      (bytes: Buffer) => fromBinary(ServerReflectionResponseSchema, bytes),
      new grpc.Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
    );
    return new Promise<ReturnType<typeof fromBinary<typeof ServerReflectionResponseSchema>>>(
      (resolve, reject) => {
        call.once("data", (response) => {
          resolve(response);
          call.end();
        });
        call.once("error", reject);
        call.write(create(ServerReflectionRequestSchema, { messageRequest: request }));
      },
    );
  }

  async list(): Promise<string[]> {
    const answer = await this.reflect({ case: "listServices", value: "" });
    if (answer.messageResponse.case !== "listServicesResponse") {
      throw new Error(`list: ${answer.messageResponse.case}`);
    }
    return answer.messageResponse.value.service.map((service) => service.name);
  }

  /** The method named `service/Method`, from the files reflection returns for its service. */
  async method(name: string): Promise<{ method: DescMethod; registry: FileRegistry }> {
    const [service, methodName] = name.split("/") as [string, string];
    const answer = await this.reflect({ case: "fileContainingSymbol", value: service });
    if (answer.messageResponse.case !== "fileDescriptorResponse") {
      throw new Error(`${service}: ${answer.messageResponse.case}`);
    }
    const files = new Map<string, FileDescriptorProto>();
    const take = (encoded: Uint8Array[]) => {
      for (const bytes of encoded) {
        const file = fromBinary(FileDescriptorProtoSchema, bytes);
        files.set(file.name, file);
      }
    };
    take(answer.messageResponse.value.fileDescriptorProto);
    // As grpcurl does: every import not sent along is asked for by its file name.
    for (;;) {
      const missing = [...files.values()]
        .flatMap((file) => file.dependency)
        .find((dependency) => !files.has(dependency));
      if (missing === undefined) break;
      const more = await this.reflect({ case: "fileByFilename", value: missing });
      if (more.messageResponse.case !== "fileDescriptorResponse") {
        throw new Error(`${missing}: ${more.messageResponse.case}`);
      }
      take(more.messageResponse.value.fileDescriptorProto);
    }
    // Imports first, as a FileDescriptorSet must list them.
    const ordered: FileDescriptorProto[] = [];
    const add = (file: FileDescriptorProto) => {
      if (ordered.includes(file)) return;
      for (const dependency of file.dependency) add(files.get(dependency) as FileDescriptorProto);
      ordered.push(file);
    };
    for (const file of files.values()) add(file);
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
    const method = registry.getService(service)?.methods.find((each) => each.name === methodName);
    if (!method) throw new Error(`no method ${name}`);
    return { method, registry };
  }

  /** Calls `name` with the JSON request; the answers as JSON (one, or a stream's). */
  async call(name: string, json: string, headers: [string, string][]): Promise<JsonValue[]> {
    const { method, registry } = await this.method(name);
    const request = fromJson(method.input, JSON.parse(json) as JsonValue, { registry });
    const metadata = new grpc.Metadata();
    for (const [key, value] of headers) metadata.set(key, value);
    const serialize = () => Buffer.from(toBinary(method.input, request));
    const deserialize = (bytes: Buffer) =>
      toJson(method.output, fromBinary(method.output, bytes), { registry });
    const options = { deadline: Date.now() + CALL_DEADLINE_MS };
    const path = `/${method.parent.typeName}/${method.name}`;
    if (method.methodKind === "unary") {
      return [
        await new Promise<JsonValue>((resolve, reject) =>
          this.client.makeUnaryRequest(
            path,
            serialize,
            deserialize,
            request,
            metadata,
            options,
            (error, response) =>
              error || response === undefined ? reject(error) : resolve(response),
          ),
        ),
      ];
    }
    const stream = this.client.makeServerStreamRequest(
      path,
      serialize,
      deserialize,
      request,
      metadata,
      options,
    );
    const answers: JsonValue[] = [];
    for await (const answer of stream) answers.push(answer as JsonValue);
    return answers;
  }
}

describe("grpcurl block of docs/api.md", () => {
  let broker: RunningSessionbus;
  let client: ReflectingClient;

  beforeAll(async () => {
    broker = await startInProcessBroker();
    client = new ReflectingClient(new URL(broker.url).host);
  });

  afterAll(async () => {
    client?.close();
    await broker?.close();
  });

  it("lists the services, creates a queue, sends, receives and settles, and checks health", {
    timeout: CLI_TIMEOUT_MS + 60_000,
  }, async () => {
    const queue = `grpcurl-${randomUUID().slice(0, 8)}`;
    const vars: Record<string, string> = {};
    const env = { ...process.env };
    const seen: string[] = [];
    let lockToken = "";
    for (const line of grpcurlBlock()) {
      if (line.startsWith("export SESSIONBUS_CONNECTION_STRING=")) {
        // The file the broker wrote at its first start; this broker's is the test root rule's.
        env.SESSIONBUS_CONNECTION_STRING = testConnectionString(broker.url);
        continue;
      }
      if (line === "TOKEN=$(npx sessionbus token)") {
        vars.TOKEN = await cliToken(env);
        expect(vars.TOKEN).toMatch(/^SharedAccessSignature sr=/);
        continue;
      }
      const args = words(line, vars);
      expect(args[0], line).toBe("grpcurl");
      const headers: [string, string][] = [];
      let data = "{}";
      const rest: string[] = [];
      for (let i = 1; i < args.length; i++) {
        const arg = args[i] as string;
        if (arg === "-plaintext") continue;
        if (arg === "-H") {
          const [key, ...value] = (args[++i] as string).split(":");
          headers.push([(key as string).trim().toLowerCase(), value.join(":").trim()]);
        } else if (arg === "-d") data = args[++i] as string;
        else rest.push(arg);
      }
      const [address, target] = rest as [string, string];
      expect(address).toBe("127.0.0.1:50051");
      if (target === "list") {
        const services = await client.list();
        expect(services).toEqual(
          expect.arrayContaining([
            "sessionbus.v1.AdminService",
            "sessionbus.v1.MessagingService",
            "grpc.health.v1.Health",
          ]),
        );
        seen.push("list");
        continue;
      }
      const request = data
        .replaceAll('"orders"', JSON.stringify(queue))
        .replace("<lockToken from the receive>", lockToken);
      const answers = await client.call(target, request, headers);
      seen.push(target);
      const first = answers[0] as Record<string, unknown> | undefined;
      if (target.endsWith("/Send")) {
        expect(first?.results, JSON.stringify(answers)).toHaveLength(1);
      } else if (target.endsWith("/ReceiveStream")) {
        const received = first?.message as
          | { lockToken: string; message: { body: string } }
          | undefined;
        expect(received?.message.body, JSON.stringify(answers)).toBe("aGVsbG8=");
        lockToken = received?.lockToken ?? "";
      } else if (target.endsWith("/Health/Check")) {
        expect(first).toEqual({ status: "SERVING" });
      }
    }
    expect(seen).toEqual([
      "list",
      "sessionbus.v1.AdminService/CreateQueue",
      "sessionbus.v1.MessagingService/Send",
      "sessionbus.v1.MessagingService/ReceiveStream",
      "sessionbus.v1.MessagingService/Settle",
      "grpc.health.v1.Health/Check",
    ]);
    // Settled: nothing is left to peek.
    const peeked = await client.call(
      "sessionbus.v1.MessagingService/Peek",
      JSON.stringify({ entityPath: queue, maxMessages: 10 }),
      [["authorization", vars.TOKEN ?? ""]],
    );
    expect((peeked[0] as { messages?: unknown[] }).messages ?? []).toEqual([]);
    await client.call("sessionbus.v1.AdminService/DeleteQueue", JSON.stringify({ name: queue }), [
      ["authorization", vars.TOKEN ?? ""],
    ]);
  });
});
