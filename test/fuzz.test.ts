/**
 * Fuzz: random and mutated requests over every RPC of MessagingService and AdminService,
 * sent to a broker process through grpc-js on one connection. Every answer must be a known
 * status — never INTERNAL or UNKNOWN, and UNAVAILABLE only as STORE_UNAVAILABLE (NATS slow
 * to answer on a loaded machine) — and every error must carry an ErrorDetail; no call may
 * outlive its deadline, and afterwards the broker must be healthy with bounded memory.
 *
 * SESSIONBUS_FUZZ_REQUESTS sets the number of requests (default 5,000) and
 * SESSIONBUS_FUZZ_SEED the seed (printed, so a failing run can be repeated).
 */
import { readFileSync } from "node:fs";
import { type DescMethod, type DescService, fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AdminService } from "../gen/ts/sessionbus/v1/admin_service_pb.js";
import { MessagingService } from "../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import {
  createRandom,
  type FuzzTargets,
  fuzzRequest,
  type Random,
} from "./support/fuzz-requests.js";
import { errorReason, SessionbusClient, uniqueName } from "./support/grpc-client.js";
import { rootToken } from "./support/test-credentials.js";

const REQUESTS = Number(process.env.SESSIONBUS_FUZZ_REQUESTS || 5000);
const SEED = Number(process.env.SESSIONBUS_FUZZ_SEED || Math.floor(Math.random() * 2 ** 31));
const IN_FLIGHT = 16;
/** Calls that may wait for messages or sessions get a short deadline; others a long one. */
const WAITING_DEADLINE_MS = 3_000;
const CALL_DEADLINE_MS = 60_000;
/** A call's answer may come this late after its deadline on a busy machine. */
const DEADLINE_SLACK_MS = 5_000;
const WAITING = new Set(["AcceptSession", "ReceiveStream", "RequestReply"]);
/** Answers a request of the broker's API may get; anything else is a bug. */
const KNOWN_CODES = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.ALREADY_EXISTS,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.ABORTED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.DEADLINE_EXCEEDED,
  // Hostile tokens (a few of the requests carry one): TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED.
  grpc.status.UNAUTHENTICATED,
]);
const RSS_BOUND_BYTES = 800 * 1024 * 1024;

interface Outcome {
  code: number;
  details: string;
  metadata: grpc.Metadata;
  /** FrameError codes and reasons of a bidirectional call's answers. */
  frameErrors: { code: number; reason: string }[];
  elapsedMs: number;
}

const identity = (bytes: Buffer) => bytes;

/**
 * The metadata of one fuzzed call: mostly the root token (so requests reach the handlers),
 * sometimes none, a mutated one or printable junk of any length.
 */
function metadataFor(random: Random): grpc.Metadata {
  const metadata = new grpc.Metadata();
  const token = rootToken();
  const printable = (length: number) =>
    Array.from({ length }, () => String.fromCharCode(32 + random.int(95))).join("");
  switch (random.chance(0.9) ? 0 : 1 + random.int(5)) {
    case 0:
      metadata.set("authorization", token);
      break;
    case 1:
      break;
    case 2: {
      const at = random.int(token.length);
      metadata.set("authorization", `${token.slice(0, at)}${printable(1)}${token.slice(at + 1)}`);
      break;
    }
    case 3:
      metadata.set("authorization", `SharedAccessSignature ${printable(random.int(300))}`);
      break;
    case 4:
      metadata.set("authorization", printable(random.pick([0, 1, 4096, 4097, 7000])));
      break;
    default:
      metadata.set("authorization", token.replace(/se=\d+/, `se=${random.int(2_000_000_000)}`));
  }
  return metadata;
}

function call(
  client: grpc.Client,
  method: DescMethod,
  random: Random,
  targets: FuzzTargets,
): Promise<Outcome> {
  const path = `/${method.parent.typeName}/${method.name}`;
  const deadlineMs = WAITING.has(method.name) ? WAITING_DEADLINE_MS : CALL_DEADLINE_MS;
  const options = { deadline: Date.now() + deadlineMs };
  const started = performance.now();
  const frameErrors: Outcome["frameErrors"] = [];
  return new Promise((resolve) => {
    const done = (status: grpc.StatusObject) =>
      resolve({
        code: status.code,
        details: status.details,
        metadata: status.metadata,
        frameErrors,
        elapsedMs: performance.now() - started,
      });
    const request = fuzzRequest(random, method.input, targets);
    if (method.methodKind === "unary") {
      const unary = client.makeUnaryRequest(
        path,
        identity,
        identity,
        request,
        metadataFor(random),
        options,
        () => undefined,
      );
      unary.on("status", done);
    } else if (method.methodKind === "server_streaming") {
      const stream = client.makeServerStreamRequest(
        path,
        identity,
        identity,
        request,
        metadataFor(random),
        options,
      );
      let received = 0;
      stream.on("data", () => {
        if (++received === 20) stream.cancel();
      });
      stream.on("error", () => undefined);
      stream.on("status", done);
    } else {
      const stream = client.makeBidiStreamRequest(
        path,
        identity,
        identity,
        metadataFor(random),
        options,
      );
      stream.on("data", (bytes: Buffer) => {
        const answer = fromBinary(method.output, bytes) as {
          error?: { code: number; detail?: { reason: string } };
        };
        if (answer.error) {
          frameErrors.push({ code: answer.error.code, reason: answer.error.detail?.reason ?? "" });
        }
      });
      stream.on("error", () => undefined);
      stream.on("status", done);
      stream.write(request);
      for (let i = random.int(3); i > 0; i--)
        stream.write(fuzzRequest(random, method.input, targets));
      stream.end();
    }
  });
}

/** What is wrong with an answer, or undefined when it is acceptable. */
function problemOf(method: DescMethod, outcome: Outcome): string | undefined {
  const name = grpc.status[outcome.code] ?? String(outcome.code);
  const reason =
    outcome.code === grpc.status.OK
      ? undefined
      : errorReason({ code: outcome.code, details: outcome.details, metadata: outcome.metadata })
          .reason;
  // On a loaded machine NATS may not answer in time: the broker then says so, with its
  // reason. UNAVAILABLE without that reason (a dropped connection) is a failure.
  const storeUnavailable =
    outcome.code === grpc.status.UNAVAILABLE && reason === "STORE_UNAVAILABLE";
  if (!KNOWN_CODES.has(outcome.code) && !storeUnavailable) {
    return `answered ${name}: ${outcome.details}`;
  }
  if (outcome.code === grpc.status.DEADLINE_EXCEEDED && !WAITING.has(method.name)) {
    return `did not answer before its deadline (${Math.round(outcome.elapsedMs)} ms)`;
  }
  const deadlineMs = WAITING.has(method.name) ? WAITING_DEADLINE_MS : CALL_DEADLINE_MS;
  if (outcome.elapsedMs > deadlineMs + DEADLINE_SLACK_MS) {
    return `took ${Math.round(outcome.elapsedMs)} ms, past its ${deadlineMs} ms deadline`;
  }
  if (
    outcome.code !== grpc.status.OK &&
    outcome.code !== grpc.status.DEADLINE_EXCEEDED &&
    !reason
  ) {
    return `answered ${name} without an ErrorDetail: ${outcome.details}`;
  }
  for (const frame of outcome.frameErrors) {
    if (!KNOWN_CODES.has(frame.code))
      return `answered a frame with code ${frame.code} (${frame.reason})`;
    if (!frame.reason) return `answered a frame with code ${frame.code} without a reason`;
  }
  return undefined;
}

function rssBytes(pid: number): number {
  const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kib) * 1024;
}

describe("fuzz", () => {
  let broker: BrokerProcess;
  let setup: SessionbusClient;
  const targets: { entityPaths: string[]; sessionIds: string[] } = {
    entityPaths: [],
    sessionIds: [],
  };

  beforeAll(async () => {
    broker = await startBrokerProcess({ natsUrl: inject("natsUrl") });
    setup = new SessionbusClient(broker.url);
    const queue = uniqueName("fuzz-q");
    const sessions = uniqueName("fuzz-s");
    const topic = uniqueName("fuzz-t");
    await setup.createQueue(queue);
    await setup.createQueue(sessions, { requiresSession: true, lockDuration: { seconds: 5 } });
    await setup.unary("AdminService", "CreateTopic", { name: topic, properties: {} });
    await setup.unary("AdminService", "CreateSubscription", {
      topicName: topic,
      name: "sub",
      properties: { requiresSession: true },
    });
    targets.sessionIds.push("a", "b", "", "😀");
    await setup.send(queue, [{ body: Buffer.from("m") }]);
    await setup.send(
      sessions,
      targets.sessionIds.map((sessionId) => ({ sessionId, body: Buffer.from(sessionId) })),
    );
    targets.entityPaths.push(
      queue,
      sessions,
      topic,
      `${topic}/subscriptions/sub`,
      `${queue}/$deadletterqueue`,
      `${sessions}/$DeadLetterQueue`,
    );
  });

  afterAll(async () => {
    if (setup) {
      // Everything the fuzzer may have created under these names goes with them.
      for (const name of targets.entityPaths.slice(0, 2)) {
        await setup.unary("AdminService", "DeleteQueue", { name }).catch(() => undefined);
      }
      await setup
        .unary("AdminService", "DeleteTopic", { name: targets.entityPaths[2] })
        .catch(() => undefined);
      setup.close();
    }
    await broker?.stop();
  });

  it(`answers ${REQUESTS} random and mutated requests with known codes and reasons, and stays healthy`, async () => {
    console.log(`fuzz: ${REQUESTS} requests, seed ${SEED} (SESSIONBUS_FUZZ_SEED to repeat)`);
    const random = createRandom(SEED);
    const methods = [MessagingService, AdminService].flatMap(
      (service: DescService) => service.methods,
    );
    // One connection for every request, as a client has: an answer that breaks the
    // connection (e.g. a header too large for the client) fails every call after it.
    const client = new grpc.Client(
      broker.url.replace(/^http:\/\//, ""),
      grpc.credentials.createInsecure(),
    );
    const codes = new Map<string, number>();
    const problems: string[] = [];
    let sent = 0;
    const worker = async () => {
      while (sent < REQUESTS) {
        sent++;
        const method = random.pick(methods);
        const outcome = await call(client, method, random, targets);
        const name = grpc.status[outcome.code] ?? String(outcome.code);
        codes.set(name, (codes.get(name) ?? 0) + 1);
        const problem = problemOf(method, outcome);
        if (problem && problems.length < 20) problems.push(`${method.name} ${problem}`);
      }
    };
    try {
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    } finally {
      client.close();
    }
    console.log(`fuzz: codes seen: ${JSON.stringify(Object.fromEntries([...codes].sort()))}`);
    expect(problems, `seed ${SEED}; the broker's last lines:\n${broker.output()}`).toEqual([]);

    // The broker is healthy afterwards: it serves a real round trip, within a bounded RSS.
    const queue = targets.entityPaths[0] as string;
    await setup.unary("AdminService", "CreateQueue", { name: `${queue}-after` });
    await setup.send(`${queue}-after`, [{ body: Buffer.from("after") }]);
    expect((await setup.peekAll(`${queue}-after`)).length).toBe(1);
    await setup.unary("AdminService", "DeleteQueue", { name: `${queue}-after` });
    expect(rssBytes(broker.pid)).toBeLessThan(RSS_BOUND_BYTES);
  }, 600_000);
});
