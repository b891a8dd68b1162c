/**
 * The broker's log: JSON lines on stdout, every one of them, saying what the broker does
 * (start, entity changes, stop) and never what it carries (bodies, states) or what signs
 * (keys, tokens, connection strings).
 */
import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, describe, expect, inject, it } from "vitest";
import { AdminService } from "../gen/ts/sessionbus/v1/admin_service_pb.js";
import { AccessRight } from "../gen/ts/sessionbus/v1/authorization_pb.js";
import { createSessionBusClient, sasInterceptor } from "../src/client/index.js";
import { readConfig } from "../src/config.js";
import { LISTENING_MESSAGE, parseLogLine } from "../src/observability/log-line.js";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { rootToken, TEST_ROOT_KEY, testConnectionString } from "./support/test-credentials.js";

let broker: BrokerProcess | undefined;

afterAll(async () => {
  await broker?.stop();
});

describe("the broker's log", () => {
  it("is JSON lines on stdout that say what happened, never a body, a state or a key", async () => {
    broker = await startBrokerProcess({ natsUrl: inject("natsUrl") });
    const connectionString = testConnectionString(broker.url);
    const client = createSessionBusClient({ connectionString });
    const queue = `logs-${randomUUID()}`;
    const body = `a body the log must not show ${randomUUID()}`;
    const state = `a state the log must not show ${randomUUID()}`;
    const ruleKey = Buffer.from(`a rule key the log must not show ${randomUUID()}`).toString(
      "base64",
    );
    const ruleName = `logs-rule-${randomUUID().slice(0, 8)}`;
    try {
      await client.createQueue(queue, { requiresSession: true });
      await client.sender(queue).send({ sessionId: "s", body });
      const session = await client.acceptSession(queue, "s");
      await session.setState(state);
      await session.close();
      const admin = createClient(
        AdminService,
        createGrpcTransport({
          baseUrl: broker.url,
          interceptors: [sasInterceptor(connectionString)],
        }),
      );
      await admin.createAuthorizationRule({
        entityPath: queue,
        name: ruleName,
        rights: [AccessRight.SEND],
        primaryKey: ruleKey,
      });
      await client.deleteQueue(queue);
    } finally {
      await client.close();
    }
    const exit = await broker.stop();
    expect(exit).toEqual({ code: 0, signal: null });

    const lines = broker.stdout();
    expect(lines.length).toBeGreaterThan(0);
    const logged = lines.map((line) => {
      const parsed = parseLogLine(line);
      expect(parsed, `a stdout line that is no log line: ${line}`).toBeDefined();
      return parsed as NonNullable<typeof parsed>;
    });
    for (const line of logged) {
      expect(typeof line.time).toBe("string");
      expect(Number.isNaN(Date.parse(line.time as string))).toBe(false);
      expect(line.name).toBe("sessionbus");
    }
    const messages = logged.map((line) => line.msg);
    expect(messages.some((msg) => msg.startsWith("authorization on;"))).toBe(true);
    expect(messages.some((msg) => msg.startsWith(LISTENING_MESSAGE))).toBe(true);
    expect(messages).toContain(`CreateQueue ${queue}`);
    expect(messages).toContain(`CreateAuthorizationRule ${queue} ${ruleName}`);
    expect(messages).toContain(`DeleteQueue ${queue}`);
    expect(messages).toContain("SIGTERM received, shutting down");
    expect(messages.at(-1)).toBe("sessionbus stopped");

    const everything = `${lines.join("\n")}\n${broker.output()}`;
    for (const secret of [body, state, ruleKey, TEST_ROOT_KEY, rootToken(), connectionString]) {
      expect(everything).not.toContain(secret);
    }
  });
});

describe("SESSIONBUS_LOG_LEVEL and the metrics settings", () => {
  it("takes the levels pino knows, info by default", () => {
    expect(readConfig({}).logLevel).toBe("info");
    expect(readConfig({ SESSIONBUS_LOG_LEVEL: "WARN" }).logLevel).toBe("warn");
    expect(() => readConfig({ SESSIONBUS_LOG_LEVEL: "verbose" })).toThrow(
      /SESSIONBUS_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/,
    );
  });

  it("refuses a guessable metrics token and a label cap out of range", () => {
    expect(() => readConfig({ SESSIONBUS_METRICS_TOKEN: "short" })).toThrow(
      /SESSIONBUS_METRICS_TOKEN must be at least 16 characters/,
    );
    expect(readConfig({ SESSIONBUS_METRICS_TOKEN: "x".repeat(16) }).metrics?.token).toBe(
      "x".repeat(16),
    );
    expect(readConfig({}).metrics).toEqual({ maxEntities: 100 });
    expect(() => readConfig({ SESSIONBUS_METRICS_MAX_ENTITIES: "-1" })).toThrow(
      /SESSIONBUS_METRICS_MAX_ENTITIES must be a whole number/,
    );
  });
});
