/**
 * Every method the broker serves × every kind of caller: no token, an expired token, a bad
 * signature, Send-only, Listen-only, Manage, a token for another entity, and a token signed
 * with a rule's secondary key. The methods come from the broker itself (its route table), and
 * the rights each needs from the table below, written from the issue and not from src/: a
 * method served without an entry here fails the test, so a new RPC cannot skip the matrix.
 *
 * Every call names entities that do not exist (or are created by an allowed call on the
 * way): a caller's rights never depend on whether an entity exists.
 */
import { randomUUID } from "node:crypto";
import { create, type DescMethod, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBroker, type TestBroker } from "./support/grpc-broker.js";
import { errorReason } from "./support/grpc-client.js";
import { mintToken } from "./support/test-credentials.js";

type Right = "Manage" | "Send" | "Listen";

const run = randomUUID().slice(0, 8);
const QUEUE = `matrix-${run}-queue`;
const REPLY_QUEUE = `matrix-${run}-replies`;
const TOPIC = `matrix-${run}-topic`;
const SUBSCRIPTION = "audit";
const OTHER = `matrix-${run}-other`;
const ONE_SECOND = { seconds: 1n };

const admin = (method: string) => `sessionbus.v1.AdminService/${method}`;
const messaging = (method: string) => `sessionbus.v1.MessagingService/${method}`;
const onQueue = { name: QUEUE };
const onTopic = { name: TOPIC };
const onSubscription = { topicName: TOPIC, name: SUBSCRIPTION };
const onSubscriptionRules = { topicName: TOPIC, subscriptionName: SUBSCRIPTION };
const onRule = { entityPath: QUEUE, name: "matrix-rule" };
const onEntity = { entityPath: QUEUE };

/** What each method needs ("public": nothing), and a request naming the entities above. */
const EXPECTED: Record<string, { needs: Right[] | "public"; request: Record<string, unknown> }> = {
  [admin("CreateQueue")]: { needs: ["Manage"], request: onQueue },
  [admin("GetQueue")]: { needs: ["Manage"], request: onQueue },
  [admin("ListQueues")]: { needs: ["Manage"], request: {} },
  [admin("UpdateQueue")]: { needs: ["Manage"], request: onQueue },
  [admin("DeleteQueue")]: { needs: ["Manage"], request: onQueue },
  [admin("CreateTopic")]: { needs: ["Manage"], request: onTopic },
  [admin("GetTopic")]: { needs: ["Manage"], request: onTopic },
  [admin("ListTopics")]: { needs: ["Manage"], request: {} },
  [admin("UpdateTopic")]: { needs: ["Manage"], request: onTopic },
  [admin("DeleteTopic")]: { needs: ["Manage"], request: onTopic },
  [admin("CreateSubscription")]: { needs: ["Manage"], request: onSubscription },
  [admin("GetSubscription")]: { needs: ["Manage"], request: onSubscription },
  [admin("ListSubscriptions")]: { needs: ["Manage"], request: { topicName: TOPIC } },
  [admin("UpdateSubscription")]: { needs: ["Manage"], request: onSubscription },
  [admin("DeleteSubscription")]: { needs: ["Manage"], request: onSubscription },
  [admin("CreateRule")]: {
    needs: ["Manage"],
    request: { ...onSubscriptionRules, rule: { name: "matrix" } },
  },
  [admin("ListRules")]: { needs: ["Manage"], request: onSubscriptionRules },
  [admin("DeleteRule")]: { needs: ["Manage"], request: { ...onSubscriptionRules, ruleName: "x" } },
  [admin("CreateAuthorizationRule")]: { needs: ["Manage"], request: { ...onRule, rights: [2] } },
  [admin("GetAuthorizationRule")]: { needs: ["Manage"], request: onRule },
  [admin("ListAuthorizationRules")]: { needs: ["Manage"], request: onEntity },
  [admin("UpdateAuthorizationRule")]: { needs: ["Manage"], request: { ...onRule, rights: [3] } },
  [admin("RegenerateAuthorizationRuleKey")]: { needs: ["Manage"], request: { ...onRule, key: 1 } },
  [admin("DeleteAuthorizationRule")]: { needs: ["Manage"], request: onRule },

  [messaging("Send")]: { needs: ["Send"], request: { ...onEntity, messages: [{}] } },
  [messaging("SendStream")]: { needs: ["Send"], request: { ...onEntity, messages: [{}] } },
  [messaging("ScheduleMessages")]: { needs: ["Send"], request: { ...onEntity, messages: [{}] } },
  [messaging("CancelScheduledMessages")]: {
    needs: ["Send"],
    request: { ...onEntity, sequenceNumbers: [1n] },
  },
  [messaging("Peek")]: { needs: ["Listen"], request: onEntity },
  [messaging("ReceiveStream")]: {
    needs: ["Listen"],
    request: { ...onEntity, maxWait: ONE_SECOND },
  },
  [messaging("Settle")]: {
    needs: ["Listen"],
    request: { ...onEntity, lockTokens: [randomUUID()] },
  },
  [messaging("SettleStream")]: {
    needs: ["Listen"],
    request: { ...onEntity, lockTokens: [randomUUID()] },
  },
  [messaging("RenewMessageLock")]: {
    needs: ["Listen"],
    request: { ...onEntity, lockTokens: [randomUUID()] },
  },
  [messaging("ReceiveDeferred")]: {
    needs: ["Listen"],
    request: { ...onEntity, sequenceNumbers: [1n] },
  },
  [messaging("AcceptSession")]: {
    needs: ["Listen"],
    request: { ...onEntity, maxWait: ONE_SECOND },
  },
  [messaging("RenewSessionLock")]: { needs: ["Listen"], request: onEntity },
  [messaging("CloseSession")]: { needs: ["Listen"], request: onEntity },
  [messaging("GetSessionState")]: { needs: ["Listen"], request: onEntity },
  [messaging("SetSessionState")]: { needs: ["Listen"], request: onEntity },
  [messaging("ListSessions")]: { needs: ["Listen"], request: onEntity },
  [messaging("PeekSessionState")]: { needs: ["Listen"], request: { ...onEntity, sessionId: "s" } },
  [messaging("ResubmitDeadLetteredMessages")]: {
    needs: ["Listen", "Send"],
    request: { ...onEntity, sequenceNumbers: [1n] },
  },
  [messaging("PurgeDeadLetteredMessages")]: { needs: ["Listen"], request: onEntity },
  [messaging("RequestReply")]: {
    needs: ["Send", "Listen"],
    request: { ...onEntity, request: {}, replyTo: REPLY_QUEUE, timeout: ONE_SECOND },
  },

  "grpc.health.v1.Health/Check": { needs: "public", request: {} },
  "grpc.health.v1.Health/Watch": { needs: "public", request: {} },
  "grpc.reflection.v1.ServerReflection/ServerReflectionInfo": {
    needs: "public",
    request: { messageRequest: { case: "listServices", value: "" } },
  },
  "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {
    needs: "public",
    request: { messageRequest: { case: "listServices", value: "" } },
  },
};

const keyOf = (method: DescMethod) => `${method.parent.typeName}/${method.name}`;

/** A call's outcome: its status code, or a stream frame's error code, with the reason. */
interface Outcome {
  code: number;
  reason: string | undefined;
  missingRight: string | undefined;
}

const CALL_DEADLINE_MS = 15_000;

/** Calls `method` once with `request` and `token`, on the gRPC port. */
function call(
  client: grpc.Client,
  method: DescMethod,
  request: Record<string, unknown>,
  token: string | null,
): Promise<Outcome> {
  const path = `/${keyOf(method)}`;
  const serialize = (value: Record<string, unknown>) =>
    Buffer.from(toBinary(method.input, create(method.input, value)));
  const identity = (bytes: Buffer) => bytes;
  const metadata = new grpc.Metadata();
  if (token !== null) metadata.set("authorization", token);
  const options = { deadline: Date.now() + CALL_DEADLINE_MS };
  const fromStatus = (status: grpc.StatusObject): Outcome => {
    if (status.code === grpc.status.OK) {
      return { code: 0, reason: undefined, missingRight: undefined };
    }
    const decoded = errorReason({ ...status, details: status.details });
    return { code: decoded.code, reason: decoded.reason, missingRight: decoded.missingRight };
  };
  return new Promise((resolve) => {
    if (method.methodKind === "unary") {
      client
        .makeUnaryRequest(path, serialize, identity, request, metadata, options, () => undefined)
        .on("status", (status) => resolve(fromStatus(status)));
    } else if (method.methodKind === "server_streaming") {
      const stream = client.makeServerStreamRequest(
        path,
        serialize,
        identity,
        request,
        metadata,
        options,
      );
      // The first message shows the call got through (Health/Watch never ends by itself).
      stream.on("data", () => {
        resolve({ code: 0, reason: undefined, missingRight: undefined });
        stream.cancel();
      });
      stream.on("error", () => undefined);
      stream.on("status", (status) => resolve(fromStatus(status)));
    } else {
      const stream = client.makeBidiStreamRequest(path, serialize, identity, metadata, options);
      // A stream frame that fails answers with its own error; the stream goes on.
      stream.on("data", (bytes: Buffer) => {
        const frame = fromBinary(method.output, bytes) as {
          error?: { code: number; detail?: { reason: string; missingRight: string } };
        };
        resolve({
          code: frame.error?.code ?? 0,
          reason: frame.error?.detail?.reason,
          missingRight: frame.error?.detail?.missingRight,
        });
        stream.end();
      });
      stream.on("error", () => undefined);
      stream.on("status", (status) => resolve(fromStatus(status)));
      stream.write(request);
    }
  });
}

let running: TestBroker;
let client: grpc.Client;
const tokens = {} as Record<
  | "none"
  | "expired"
  | "badSignature"
  | "sendOnly"
  | "listenOnly"
  | "manage"
  | "otherEntity"
  | "secondaryKey",
  string | null
>;
const ruleNames = [`matrix-${run}-send`, `matrix-${run}-listen`, `matrix-${run}-manage`];

beforeAll(async () => {
  running = await startTestBroker();
  const [send, listen, manage] = await Promise.all(
    ruleNames.map(
      (name, index) =>
        running.client.unary("AdminService", "CreateAuthorizationRule", {
          entityPath: "",
          name,
          rights: [["ACCESS_RIGHT_SEND"], ["ACCESS_RIGHT_LISTEN"], ["ACCESS_RIGHT_MANAGE"]][index],
        }) as Promise<{ rule: { name: string; primaryKey: string; secondaryKey: string } }>,
    ),
  );
  if (!send || !listen || !manage) throw new Error("rules not made");
  const sign = (rule: { name: string; primaryKey: string }, entityPath = "") =>
    mintToken({ keyName: rule.name, key: rule.primaryKey, entityPath });
  const now = Math.floor(Date.now() / 1000);
  tokens.none = null;
  tokens.expired = mintToken({
    keyName: manage.rule.name,
    key: manage.rule.primaryKey,
    expiresAtSeconds: now - 60,
  });
  tokens.badSignature = mintToken({ keyName: manage.rule.name, key: `${manage.rule.primaryKey}x` });
  tokens.sendOnly = sign(send.rule);
  tokens.listenOnly = sign(listen.rule);
  tokens.manage = sign(manage.rule);
  tokens.otherEntity = sign(manage.rule, OTHER);
  tokens.secondaryKey = mintToken({ keyName: manage.rule.name, key: manage.rule.secondaryKey });
  client = new grpc.Client(
    running.broker.url.replace(/^http:\/\//, ""),
    grpc.credentials.createInsecure(),
  );
}, 60_000);

afterAll(async () => {
  client?.close();
  for (const name of ruleNames) {
    await running?.client
      .unary("AdminService", "DeleteAuthorizationRule", { entityPath: "", name })
      .catch(() => undefined);
  }
  for (const name of [QUEUE, TOPIC]) {
    await running?.client.unary("AdminService", "DeleteQueue", { name }).catch(() => undefined);
    await running?.client.unary("AdminService", "DeleteTopic", { name }).catch(() => undefined);
  }
  await running?.close();
});

/** What a caller holding `token` must get from a method that needs `needs`. */
function expectation(
  needs: Right[] | "public",
  caller: keyof typeof tokens,
): { code: number; reason: string; missingRight?: string } | "allowed" {
  if (needs === "public") return "allowed";
  switch (caller) {
    case "none":
      return { code: grpc.status.UNAUTHENTICATED, reason: "TOKEN_MISSING" };
    case "expired":
      return { code: grpc.status.UNAUTHENTICATED, reason: "TOKEN_EXPIRED" };
    case "badSignature":
      return { code: grpc.status.UNAUTHENTICATED, reason: "TOKEN_INVALID" };
    case "manage":
    case "secondaryKey":
      return "allowed";
    case "otherEntity":
      return {
        code: grpc.status.PERMISSION_DENIED,
        reason: "MISSING_RIGHT",
        missingRight: needs[0],
      };
    case "sendOnly":
    case "listenOnly": {
      const has: Right = caller === "sendOnly" ? "Send" : "Listen";
      const missing = needs.find((right) => right !== has);
      return missing === undefined
        ? "allowed"
        : { code: grpc.status.PERMISSION_DENIED, reason: "MISSING_RIGHT", missingRight: missing };
    }
  }
}

describe("authorization of every method", () => {
  it("has an expected access rule here for every method the broker serves, and no other", () => {
    const served = running.broker.methods.map(keyOf).sort();
    expect(served).toEqual(Object.keys(EXPECTED).sort());
  });

  it("answers every method × caller with the expected code and reason", async () => {
    const wrong: string[] = [];
    for (const method of running.broker.methods) {
      const expected = EXPECTED[keyOf(method)];
      if (!expected) continue; // reported by the test above
      const callers = Object.keys(tokens) as (keyof typeof tokens)[];
      const outcomes = await Promise.all(
        callers.map((caller) => call(client, method, expected.request, tokens[caller])),
      );
      callers.forEach((caller, index) => {
        const outcome = outcomes[index] as Outcome;
        const want = expectation(expected.needs, caller);
        const label = `${keyOf(method)} as ${caller}`;
        if (want === "allowed") {
          if (
            outcome.code === grpc.status.UNAUTHENTICATED ||
            outcome.code === grpc.status.PERMISSION_DENIED
          ) {
            wrong.push(`${label}: refused with ${outcome.code} ${outcome.reason}`);
          }
        } else if (
          outcome.code !== want.code ||
          outcome.reason !== want.reason ||
          (want.missingRight !== undefined && outcome.missingRight !== want.missingRight)
        ) {
          wrong.push(
            `${label}: got ${outcome.code} ${outcome.reason} ${outcome.missingRight ?? ""}, want ${want.code} ${want.reason} ${want.missingRight ?? ""}`,
          );
        }
      });
    }
    expect(wrong).toEqual([]);
  }, 240_000);
});
