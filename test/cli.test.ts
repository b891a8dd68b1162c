import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../gen/ts/sessionbus/v1/admin_service_pb.js";
import { AccessRight } from "../gen/ts/sessionbus/v1/authorization_pb.js";
import type { RunningSessionbus } from "../src/app.js";
import { formatConnectionString, sasInterceptor } from "../src/client/index.js";
import { buildCliIfStale, CLI_BUILD_TIMEOUT_MS } from "./support/cli-build.js";
import { docBlock } from "./support/doc-samples.js";
import { startInProcessBroker } from "./support/grpc-broker.js";
import { testConnectionString } from "./support/test-credentials.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const launcher = join(projectRoot, "bin/sessionbus.mjs");
/** How long one CLI run may take before the test fails instead of hanging. */
const CLI_TIMEOUT_MS = 30_000;

/** The lines of a marked sh block, comments cut; `serve` runs until stopped, so not it. */
function sampleLines(file: string, marker: string): string[] {
  return docBlock(file, marker)
    .split("\n")
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter((line) => line !== "" && !line.includes(" serve"));
}

/** The CLI block of docs/cli.md. */
const DOCS_CLI_LINES = sampleLines("docs/cli.md", "sample: cli");
/** The CLI example of the README. */
const README_CLI_LINES = sampleLines("README.md", "sample: cli-quick");

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI as a child process (without blocking the in-process broker), with neither
 * address nor connection string from the test's own environment.
 */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runProcess(process.execPath, [launcher, ...args], {
    SESSIONBUS_URL: "",
    SESSIONBUS_CONNECTION_STRING: "",
    SESSIONBUS_DATA_DIR: "",
    ...env,
  });
}

/** Runs one documented line through bash, as a reader would paste it. */
function shell(command: string, env: NodeJS.ProcessEnv): Promise<CliResult> {
  return runProcess("bash", ["-c", command], env);
}

function runProcess(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const child = spawn(file, args, {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  return new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${file} ${args.join(" ")} took longer than ${CLI_TIMEOUT_MS} ms`));
    }, CLI_TIMEOUT_MS);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// The launcher runs dist/: compiled once here, not by the first CLI process of a test.
beforeAll(buildCliIfStale, CLI_BUILD_TIMEOUT_MS);

// Each test runs a sequence of CLI processes (a few tenths of a second of start-up each on
// an idle machine, several times that on a loaded one): more time than one RPC test.
describe("sessionbus CLI", { timeout: 180_000 }, () => {
  let broker: RunningSessionbus;
  const queue = `cli-${randomUUID().slice(0, 8)}`;

  let connectionString: string;

  beforeAll(async () => {
    broker = await startInProcessBroker();
    connectionString = testConnectionString(broker.url);
  });

  afterAll(async () => {
    await broker?.close();
  });

  /**
   * Runs a command against the test broker with --json and the root rule's connection string
   * (which also gives the address); expects exit 0 and parses stdout.
   */
  async function json(args: string[]): Promise<Record<string, unknown>> {
    const result = await cli(["--connection-string", connectionString, "--json", ...args]);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as Record<string, unknown>;
  }

  /** Runs a command with the connection string in SESSIONBUS_CONNECTION_STRING. */
  function authorized(args: string[]): Promise<CliResult> {
    return cli(args, { SESSIONBUS_CONNECTION_STRING: connectionString });
  }

  it("creates a session queue, sends, peeks, receives and keeps session state", async () => {
    const created = await json(["queue", "create", queue, "--requires-session"]);
    expect(created.name).toBe(queue);
    expect((created.properties as { requiresSession: boolean }).requiresSession).toBe(true);

    for (const body of ["one", "two", "three"]) {
      const sent = await json(["send", queue, "--session", "s1", "--body", body]);
      expect(sent.sent).toBe(1);
    }

    const peeked = await json(["peek", queue, "--max", "10"]);
    const peekedMessages = peeked.messages as { body: string; sequenceNumber: string }[];
    expect(peekedMessages.map((m) => m.body)).toEqual(["one", "two", "three"]);
    expect(typeof peekedMessages[0]?.sequenceNumber).toBe("string");

    const listed = await json(["sessions", "list", queue]);
    expect((listed.sessions as { sessionId: string }[]).map((s) => s.sessionId)).toEqual(["s1"]);

    const received = await json([
      "receive",
      queue,
      "--session",
      "s1",
      "--max",
      "3",
      "--wait",
      "5s",
    ]);
    expect(received.received).toBe(3);
    expect(received.completed).toBe(true);
    expect((received.messages as { body: string }[]).map((m) => m.body)).toEqual([
      "one",
      "two",
      "three",
    ]);
    const afterReceive = await json(["peek", queue, "--max", "10"]);
    expect(afterReceive.messages).toEqual([]);

    const value = '{"step":2}';
    await json(["state", "set", queue, "s1", value]);
    const state = await json(["state", "get", queue, "s1"]);
    expect(state.state).toBe(value);
  });

  it("exits 3 when nothing arrives within --wait", async () => {
    const result = await authorized([
      "--url",
      broker.url,
      "--json",
      "receive",
      queue,
      "--session",
      "empty",
      "--wait",
      "200ms",
    ]);
    expect(result.code, result.stderr).toBe(3);
  });

  it("exits 1 with the broker's reason for an unknown queue", async () => {
    const result = await authorized([
      "--url",
      broker.url,
      "--json",
      "peek",
      `missing-${randomUUID()}`,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("ENTITY_NOT_FOUND");
  });

  it("exits 2 on a bad flag, a missing argument and mixed rule filters", async () => {
    const bad = await authorized(["--url", broker.url, "send", queue, "--bogus"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--help");
    const missing = await authorized(["--url", broker.url, "subscription", "create", "t"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing NAME");
    const mixed = await authorized([
      "--url",
      broker.url,
      "rule",
      "add",
      "t",
      "s",
      "r",
      "--sql",
      "a = 1",
      "--true",
    ]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain("one kind of filter");
    const noFilter = await authorized(["--url", broker.url, "rule", "add", "t", "s", "r"]);
    expect(noFilter.code).toBe(2);
    expect(noFilter.stderr).toContain('Run "sessionbus rule --help"');
  });

  it("creates a topic and a subscription with a SQL rule; sends to the topic and receives from the subscription", async () => {
    const topic = `cli-topic-${randomUUID().slice(0, 8)}`;
    const created = await json(["topic", "create", topic, "--max-size", "10MiB"]);
    expect(created).toMatchObject({ name: topic, subscriptionCount: 0 });
    expect((created.properties as { maxSizeBytes: number }).maxSizeBytes).toBe(10 * 1024 * 1024);
    const sub = await json([
      "subscription",
      "create",
      topic,
      "reds",
      "--sql",
      "sys.Label = 'red' AND priority > 3",
      "--rule-name",
      "big-reds",
    ]);
    expect(sub).toMatchObject({
      topicName: topic,
      name: "reds",
      path: `${topic}/subscriptions/reds`,
    });
    const listed = await json(["subscription", "list", topic]);
    expect((listed as unknown as { name: string }[]).map((s) => s.name)).toEqual(["reds"]);
    const topics = await json(["topic", "list"]);
    expect((topics as unknown as { name: string }[]).map((t) => t.name)).toContain(topic);

    for (const [body, label, priority] of [
      ["small red", "red", "1"],
      ["big blue", "blue", "5"],
      ["big red", "red", "5"],
    ] as const) {
      const sent = await json([
        "send",
        topic,
        "--body",
        body,
        "--label",
        label,
        "--property",
        `priority=${priority}`,
      ]);
      expect(sent.sent).toBe(1);
    }
    const path = `${topic}/subscriptions/reds`;
    const received = await json(["receive", path, "--max", "1", "--wait", "10s"]);
    expect(received.messages).toMatchObject([
      { body: "big red", subject: "red", applicationProperties: { priority: "5" } },
    ]);

    // rule add / list / delete: replace the SQL rule by a correlation rule.
    const added = await json(["rule", "add", topic, "reds", "vip", "--property", "tier=gold"]);
    expect(added).toMatchObject({
      name: "vip",
      filter: { kind: "correlation", applicationProperties: { tier: "gold" } },
    });
    await json(["rule", "delete", topic, "reds", "big-reds"]);
    const rules = await json(["rule", "list", topic, "reds"]);
    expect((rules.rules as { name: string }[]).map((r) => r.name)).toEqual(["vip"]);
    const text = await authorized(["--url", broker.url, "rule", "list", topic, "reds"]);
    expect(text.stdout.trim()).toBe('vip\tcorrelation: tier="gold"');
    await json([
      "send",
      topic,
      "--body",
      "red again",
      "--label",
      "red",
      "--property",
      "priority=9",
    ]);
    await json(["send", topic, "--body", "gold", "--property", "tier=gold"]);
    const second = await json(["receive", path, "--max", "1", "--wait", "10s"]);
    expect((second.messages as { body: string }[]).map((m) => m.body)).toEqual(["gold"]);

    const shown = await json(["subscription", "get", topic, "reds"]);
    expect((shown.rules as { name: string }[]).map((r) => r.name)).toEqual(["vip"]);
    await json(["subscription", "delete", topic, "reds"]);
    await json(["topic", "delete", topic]);
    const gone = await authorized(["--url", broker.url, "topic", "get", topic]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("ENTITY_NOT_FOUND");
  });

  it("receives a session subscription's messages with --next-session", async () => {
    const topic = `cli-stopic-${randomUUID().slice(0, 8)}`;
    await json(["topic", "create", topic]);
    await json([
      "subscription",
      "create",
      topic,
      "orders",
      "--requires-session",
      "--lock-duration",
      "30s",
      "--max-delivery-count",
      "3",
    ]);
    await json(["send", topic, "--session", "alice", "--body", "one", "--count", "2"]);
    const path = `${topic}/subscriptions/orders`;
    // Copies arrive asynchronously: a look without settling waits for the first one.
    const looked = await json([
      "receive",
      path,
      "--next-session",
      "--max",
      "1",
      "--wait",
      "10s",
      "--no-complete",
    ]);
    expect(looked).toMatchObject({ sessionId: "alice", received: 1, completed: false });
    const sessions = await json(["sessions", "list", path]);
    expect((sessions.sessions as { sessionId: string }[]).map((s) => s.sessionId)).toEqual([
      "alice",
    ]);
    const received = await json(["receive", path, "--next-session", "--max", "2", "--wait", "10s"]);
    expect(received).toMatchObject({ sessionId: "alice", received: 2 });
    await json(["topic", "delete", topic]);
  });

  it("updates a topic's and a subscription's properties; requires-session stays as created", async () => {
    const topic = `cli-update-${randomUUID().slice(0, 8)}`;
    await json(["topic", "create", topic, "--requires-duplicate-detection"]);
    const updatedTopic = await json([
      "topic",
      "update",
      topic,
      "--default-message-ttl",
      "1h",
      "--max-message-size",
      "512KiB",
      "--no-requires-duplicate-detection",
      "--duplicate-detection-window",
      "1m",
      "--max-size",
      "20MiB",
    ]);
    const topicProperties = {
      defaultMessageTtlMs: 3_600_000,
      maxMessageSizeBytes: 512 * 1024,
      requiresDuplicateDetection: false,
      duplicateDetectionWindowMs: 60_000,
      maxSizeBytes: 20 * 1024 * 1024,
    };
    expect(updatedTopic).toMatchObject({ name: topic, properties: topicProperties });
    expect(await json(["topic", "get", topic])).toMatchObject({ properties: topicProperties });

    await json(["subscription", "create", topic, "plain"]);
    const updatedSub = await json([
      "subscription",
      "update",
      topic,
      "plain",
      "--lock-duration",
      "2m",
      "--max-delivery-count",
      "4",
      "--default-message-ttl",
      "30m",
      "--dead-lettering-on-expiration",
      "--max-session-state-size",
      "64KiB",
    ]);
    const subProperties = {
      requiresSession: false,
      lockDurationMs: 120_000,
      maxDeliveryCount: 4,
      defaultMessageTtlMs: 1_800_000,
      deadLetteringOnMessageExpiration: true,
      maxSessionStateSizeBytes: 64 * 1024,
    };
    expect(updatedSub).toMatchObject({
      path: `${topic}/subscriptions/plain`,
      properties: subProperties,
    });
    // An update changes only the properties given.
    await json(["subscription", "update", topic, "plain", "--no-dead-lettering-on-expiration"]);
    expect(await json(["subscription", "get", topic, "plain"])).toMatchObject({
      properties: { ...subProperties, deadLetteringOnMessageExpiration: false },
      rules: [{ name: "$Default" }],
    });

    const refused = await authorized([
      "--url",
      broker.url,
      "subscription",
      "update",
      topic,
      "plain",
      "--requires-session",
    ]);
    expect(refused.code).toBe(1);
    const lines = refused.stderr.split("\n");
    expect(lines[0]).toMatch(/^INVALID_ARGUMENT: .*requires_session.*fixed at creation/);
    expect(lines[1]).toBe("  field: properties.requires_session");
    const unchanged = await json(["subscription", "get", topic, "plain"]);
    expect((unchanged.properties as { requiresSession: boolean }).requiresSession).toBe(false);

    const nothing = await authorized(["--url", broker.url, "topic", "update", topic]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain("at least one property flag");
    await json(["topic", "delete", topic]);
  });

  it("creates a queue with every property and updates only the ones given", async () => {
    const name = `cli-props-${randomUUID().slice(0, 8)}`;
    const created = await json([
      "queue",
      "create",
      name,
      "--requires-session",
      "--lock-duration",
      "45s",
      "--max-delivery-count",
      "3",
      "--default-message-ttl",
      "2h",
      "--dead-lettering-on-expiration",
      "--max-message-size",
      "128KiB",
      "--max-session-state-size",
      "1MiB",
      "--requires-duplicate-detection",
      "--duplicate-detection-window",
      "5m",
      "--max-size",
      "50MiB",
    ]);
    const properties = {
      requiresSession: true,
      lockDurationMs: 45_000,
      maxDeliveryCount: 3,
      defaultMessageTtlMs: 7_200_000,
      deadLetteringOnMessageExpiration: true,
      maxMessageSizeBytes: 128 * 1024,
      maxSessionStateSizeBytes: 1024 * 1024,
      requiresDuplicateDetection: true,
      duplicateDetectionWindowMs: 300_000,
      maxSizeBytes: 50 * 1024 * 1024,
    };
    expect(created).toMatchObject({ name, properties });

    const updated = await json([
      "queue",
      "update",
      name,
      "--max-delivery-count",
      "7",
      "--no-dead-lettering-on-expiration",
      "--no-requires-duplicate-detection",
    ]);
    const after = {
      ...properties,
      maxDeliveryCount: 7,
      deadLetteringOnMessageExpiration: false,
      requiresDuplicateDetection: false,
    };
    expect(updated).toMatchObject({ name, properties: after });
    expect(await json(["queue", "get", name])).toMatchObject({ properties: after });

    const text = await authorized([
      "--url",
      broker.url,
      "queue",
      "update",
      name,
      "--max-size",
      "60MiB",
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      new RegExp(`^updated ${name}\tsessions=true lock=45000ms maxDelivery=7 ttl=7200000ms `),
    );

    const nothing = await authorized(["--url", broker.url, "queue", "update", name]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain("at least one property flag");
    const contradiction = await authorized([
      "--url",
      broker.url,
      "queue",
      "update",
      name,
      "--dead-lettering-on-expiration",
      "--no-dead-lettering-on-expiration",
    ]);
    expect(contradiction.code).toBe(2);
    expect(contradiction.stderr).toContain("contradict");
    await json(["queue", "delete", name]);
  });

  it("sends with --ttl and --schedule: the message expires, or waits as scheduled until its time", async () => {
    const name = `cli-schedule-${randomUUID().slice(0, 8)}`;
    await json(["queue", "create", name]);
    const before = Date.now();
    const sent = await json(["send", name, "--body", "short-lived", "--ttl", "10m"]);
    expect(sent).toMatchObject({ sent: 1, scheduledEnqueueTime: null });
    const scheduled = await json(["send", name, "--body", "later", "--schedule", "1h"]);
    const at = Date.parse(scheduled.scheduledEnqueueTime as string);
    expect(at - before).toBeGreaterThanOrEqual(3_600_000);
    expect(at - Date.now()).toBeLessThanOrEqual(3_600_000);
    const fixed = "2099-01-02T03:04:05.000Z";
    expect(await json(["send", name, "--body", "far", "--schedule", fixed])).toMatchObject({
      scheduledEnqueueTime: fixed,
    });

    const peeked = (await json(["peek", name, "--max", "10"])).messages as {
      body: string;
      state: string;
      expiresAt: string | null;
      enqueuedTime: string;
      scheduledEnqueueTime: string | null;
    }[];
    expect(peeked.map((m) => [m.body, m.state])).toEqual([
      ["short-lived", "active"],
      ["later", "scheduled"],
      ["far", "scheduled"],
    ]);
    const [shortLived, later, far] = peeked;
    expect(
      Date.parse(shortLived?.expiresAt ?? "") - Date.parse(shortLived?.enqueuedTime ?? ""),
    ).toBe(600_000);
    expect(Date.parse(later?.scheduledEnqueueTime ?? "")).toBe(at);
    expect(far?.scheduledEnqueueTime).toBe(fixed);

    // Only the unscheduled message can be received now.
    const received = await json(["receive", name, "--wait", "1s"]);
    expect((received.messages as { body: string }[]).map((m) => m.body)).toEqual(["short-lived"]);

    const bad = await authorized([
      "--url",
      broker.url,
      "send",
      name,
      "--body",
      "x",
      "--schedule",
      "soon",
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--schedule takes a delay like 30s");
    await json(["queue", "delete", name]);
  });

  it("tells how to receive from a session queue when neither --session nor --next-session is given", async () => {
    const name = `cli-nosession-${randomUUID().slice(0, 8)}`;
    await json(["queue", "create", name, "--requires-session"]);
    await json(["send", name, "--session", "a", "--body", "hi"]);
    const result = await authorized(["--url", broker.url, "receive", name, "--wait", "2s"]);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split("\n");
    expect(lines[0]).toMatch(/^SESSION_REQUIRED: /);
    expect(result.stderr).toContain(
      `sessionbus: ${name} has sessions: receive one session with --session ID, or the next session with a message with --next-session`,
    );
    expect(result.stderr).toContain(`sessionbus receive ${name} --next-session`);
    // The message is still there for a receiver that follows the advice.
    const received = await json(["receive", name, "--next-session", "--max", "1"]);
    expect(received).toMatchObject({ sessionId: "a", received: 1 });
    await json(["queue", "delete", name]);
  });

  it("prints one JSON document for every read command under --json", async () => {
    const name = `cli-json-${randomUUID().slice(0, 8)}`;
    const topic = `cli-json-topic-${randomUUID().slice(0, 8)}`;
    await json(["queue", "create", name, "--requires-session"]);
    await json(["send", name, "--session", "s", "--body", "one"]);
    await json(["state", "set", name, "s", "v"]);
    await json(["topic", "create", topic]);
    await json(["subscription", "create", topic, "all"]);
    const reads: [string[], (document: unknown) => void][] = [
      [["queue", "get", name], (d) => expect(d).toMatchObject({ name })],
      [
        ["queue", "list"],
        (d) => expect(d).toEqual(expect.arrayContaining([expect.objectContaining({ name })])),
      ],
      [["topic", "get", topic], (d) => expect(d).toMatchObject({ name: topic })],
      [
        ["topic", "list"],
        (d) =>
          expect(d).toEqual(expect.arrayContaining([expect.objectContaining({ name: topic })])),
      ],
      [
        ["subscription", "get", topic, "all"],
        (d) => expect(d).toMatchObject({ rules: [{ name: "$Default" }] }),
      ],
      [["subscription", "list", topic], (d) => expect(d).toHaveLength(1)],
      [
        ["rule", "list", topic, "all"],
        (d) => expect(d).toMatchObject({ rules: [{ name: "$Default" }] }),
      ],
      [
        ["peek", name],
        (d) => expect(d).toMatchObject({ messages: [{ body: "one", sessionId: "s" }] }),
      ],
      [
        ["sessions", "list", name],
        (d) => expect(d).toMatchObject({ sessions: [{ sessionId: "s" }] }),
      ],
      [["state", "get", name, "s"], (d) => expect(d).toMatchObject({ state: "v" })],
      [
        ["receive", name, "--session", "s", "--no-complete"],
        (d) => expect(d).toMatchObject({ received: 1 }),
      ],
      [["token", "--ttl", "1m"], (d) => expect(d).toHaveProperty("token")],
    ];
    for (const [args, check] of reads) {
      const result = await cli(["--connection-string", connectionString, "--json", ...args]);
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(0);
      // One document: a single line that parses as a whole.
      expect(result.stdout.trimEnd().split("\n"), args.join(" ")).toHaveLength(1);
      check(JSON.parse(result.stdout));
    }
    await json(["topic", "delete", topic]);
    await json(["queue", "delete", name]);
  });

  it("exits 1 on a bad SQL rule and shows the field and the position under the expression", async () => {
    const topic = `cli-badrule-${randomUUID().slice(0, 8)}`;
    await json(["topic", "create", topic]);
    await json(["subscription", "create", topic, "s"]);
    const expression = "color = 'red' AND AND x = 1";
    const bad = await authorized([
      "--url",
      broker.url,
      "rule",
      "add",
      topic,
      "s",
      "bad",
      "--sql",
      expression,
    ]);
    expect(bad.code).toBe(1);
    const lines = bad.stderr.split("\n");
    expect(lines[0]).toMatch(/^INVALID_ARGUMENT: .*position 19/);
    expect(lines[1]).toBe("  field: rule.sql_filter.expression, position 19");
    expect(lines[2]).toBe(`    ${expression}`);
    // The caret stands under the second AND, the 19th character.
    expect(lines[3]).toBe(`    ${" ".repeat(18)}^`);
    // Also when the bad rule comes with the subscription; nothing is created then.
    const withSub = await authorized([
      "--url",
      broker.url,
      "subscription",
      "create",
      topic,
      "t",
      "--sql",
      "(",
    ]);
    expect(withSub.code).toBe(1);
    expect(withSub.stderr).toContain("position 2");
    const rules = await json(["rule", "list", topic, "s"]);
    expect((rules.rules as { name: string }[]).map((r) => r.name)).toEqual(["$Default"]);
    await json(["topic", "delete", topic]);
  });

  it("without a connection string, exits 1 and says where the broker wrote one", async () => {
    const result = await cli(["--url", broker.url, "queue", "list"]);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split("\n");
    expect(lines[0]).toMatch(/^TOKEN_MISSING: /);
    expect(result.stderr).toContain("pass --connection-string or set SESSIONBUS_CONNECTION_STRING");
    expect(result.stderr).toContain("<data dir>/connection-string");
    expect(result.stderr).toContain(
      'export SESSIONBUS_CONNECTION_STRING="$(cat data/connection-string)"',
    );
  });

  it("points at the connection string file in SESSIONBUS_DATA_DIR when there is one, without showing it", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "sessionbus-cli-auth-"));
    try {
      const file = join(dataDir, "connection-string");
      writeFileSync(file, `${connectionString}\n`, { mode: 0o600 });
      const result = await cli(["--url", broker.url, "queue", "list"], {
        SESSIONBUS_DATA_DIR: dataDir,
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`there is one at ${file}`);
      expect(result.stderr).toContain(`export SESSIONBUS_CONNECTION_STRING="$(cat ${file})"`);
      expect(result.stderr).not.toContain("SharedAccessKey=");
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("exits 1 with TOKEN_INVALID for a key the broker does not know, never showing the key", async () => {
    const wrongKey = "bm90LXRoZS1icm9rZXJzLWtleS1hdC1hbGwtMDEyMzQ1Njc4OQ==";
    const wrong = connectionString.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${wrongKey}`);
    const result = await cli(["--connection-string", wrong, "queue", "list"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^TOKEN_INVALID: /);
    expect(result.stderr).toContain("regenerated");
    expect(result.stderr).not.toContain(wrongKey);
  });

  it("exits 2 for a malformed connection string, never showing its key", async () => {
    const key = "c2VjcmV0LWtleS12YWx1ZS10aGF0LXN0YXlzLXNlY3JldA";
    const result = await cli([
      "--connection-string",
      `Endpoint=sb://127.0.0.1:1/;SharedAccessKey=${key}`,
      "queue",
      "list",
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--connection-string: ");
    expect(result.stderr).toContain("no SharedAccessKeyName");
    expect(result.stderr).not.toContain(key.slice(0, 12));
  });

  it("names the missing right when the connection string's rule lacks it", async () => {
    const admin = createClient(
      AdminService,
      createGrpcTransport({
        baseUrl: broker.url,
        interceptors: [sasInterceptor(connectionString)],
      }),
    );
    const ruleName = `cli-send-${randomUUID().slice(0, 8)}`;
    const target = `cli-rights-${randomUUID().slice(0, 8)}`;
    await json(["queue", "create", target]);
    const { rule } = await admin.createAuthorizationRule({
      entityPath: "",
      name: ruleName,
      rights: [AccessRight.SEND],
    });
    try {
      const sendOnly = formatConnectionString({
        host: "127.0.0.1",
        port: broker.port,
        keyName: ruleName,
        key: rule?.primaryKey ?? "",
        tls: false,
      });
      const denied = await cli(["--connection-string", sendOnly, "queue", "delete", target]);
      expect(denied.code, denied.stderr).toBe(1);
      const lines = denied.stderr.trim().split("\n");
      expect(lines[0]).toMatch(/^MISSING_RIGHT: /);
      expect(lines).toContain(`  missing right: Manage on ${target}`);
      expect(denied.stderr).toContain(`rule "${ruleName}" lacks the Manage right`);

      const sent = await cli(["--connection-string", sendOnly, "send", target, "--body", "b"]);
      expect(sent.code, sent.stderr).toBe(0);
    } finally {
      await admin.deleteAuthorizationRule({ entityPath: "", name: ruleName });
      await admin.deleteQueue({ name: target });
    }
  });

  it("prints tokens that curl can call the HTTP port with, for one entity or the whole namespace", async () => {
    const target = `cli-token-${randomUUID().slice(0, 8)}`;
    const curl = async (token: string, method: string, body: object) => {
      const result = await runProcess(
        "curl",
        [
          "-sS",
          "-H",
          `authorization: ${token}`,
          "-H",
          "content-type: application/json",
          "-d",
          JSON.stringify(body),
          `http://127.0.0.1:${broker.httpPort}/sessionbus.v1.${method}`,
        ],
        {},
      );
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as Record<string, unknown>;
    };

    const namespace = await authorized(["token"]);
    expect(namespace.code, namespace.stderr).toBe(0);
    const namespaceToken = namespace.stdout.trim();
    expect(namespaceToken).toMatch(
      /^SharedAccessSignature sr=sb%3A%2F%2F127\.0\.0\.1%3A\d+%2F&sig=[^&]+&se=\d+&skn=[^&]+$/,
    );
    expect(await curl(namespaceToken, "AdminService/CreateQueue", { name: target })).toMatchObject({
      queue: { name: target },
    });

    const scoped = await authorized(["--json", "token", "--entity", target, "--ttl", "10m"]);
    expect(scoped.code, scoped.stderr).toBe(0);
    const minted = JSON.parse(scoped.stdout) as {
      token: string;
      resourceUri: string;
      expiresAt: string;
    };
    expect(minted.resourceUri).toBe(`sb://127.0.0.1:${broker.port}/${target}`);
    const left = Date.parse(minted.expiresAt) - Date.now();
    expect(left).toBeGreaterThan(590_000);
    expect(left).toBeLessThanOrEqual(600_000);
    const body = Buffer.from("hi").toString("base64");
    expect(
      await curl(minted.token, "MessagingService/Send", {
        entityPath: target,
        messages: [{ body }],
      }),
    ).toMatchObject({ results: [{ sequenceNumber: "1" }] });
    // The entity's token reaches nothing else.
    expect(
      await curl(minted.token, "MessagingService/Peek", { entityPath: `${target}-other` }),
    ).toMatchObject({ code: "permission_denied" });

    await json(["queue", "delete", target]);
  });

  it("shows help with examples and exit codes", async () => {
    const main = await cli(["--help"]);
    expect(main.code).toBe(0);
    expect(main.stdout).toContain("Examples");
    expect(main.stdout).toContain("Exit codes");
    const receive = await cli(["receive", "--help"]);
    expect(receive.code).toBe(0);
    expect(receive.stdout).toContain("Examples");
    expect(receive.stdout).toContain("--connection-string");
    const token = await cli(["token", "--help"]);
    expect(token.code).toBe(0);
    expect(token.stdout).toContain("grpcurl -plaintext -H");
  });
});

describe("CLI samples of docs/cli.md and the README", () => {
  let broker: RunningSessionbus;

  beforeAll(async () => {
    broker = await startInProcessBroker();
  });

  afterAll(async () => {
    await broker?.close();
  });

  /**
   * Runs each line against the broker, with its entity names made unique; their stdouts.
   * With `nothingLeftOk`, an accept-next receive may find nothing left (exit code 3).
   */
  async function runLines(
    lines: string[],
    names: string[],
    nothingLeftOk: boolean,
  ): Promise<string[]> {
    const renames = names.map((name) => [` ${name}`, ` ${name}-${randomUUID().slice(0, 8)}`]);
    const outputs: string[] = [];
    for (const line of lines) {
      let command = line.replace(/^npx sessionbus/, `"${process.execPath}" "${launcher}"`);
      for (const [from, to] of renames) command = command.replaceAll(from as string, to as string);
      const result = await shell(command, {
        SESSIONBUS_URL: broker.url,
        SESSIONBUS_CONNECTION_STRING: testConnectionString(broker.url),
      });
      const allowed = nothingLeftOk && line.includes("--next-session") ? [0, 3] : [0];
      expect(allowed, `${line}\n${result.stderr}`).toContain(result.code);
      outputs.push(result.stdout);
    }
    return outputs;
  }

  // Each line is one CLI process with its own bound (CLI_TIMEOUT_MS), so the test's bound
  // grows with the block instead of assuming how fast a CLI process starts.
  it("runs every line of the CLI block of docs/cli.md against a broker", {
    timeout: DOCS_CLI_LINES.length * CLI_TIMEOUT_MS + 30_000,
  }, async () => {
    expect(DOCS_CLI_LINES.length).toBeGreaterThan(5);
    const outputs = await runLines(DOCS_CLI_LINES, ["orders", "events"], true);
    expect(JSON.parse(outputs.at(-1) ?? "")).toMatchObject({ state: '{"step":2}' });
  });

  it("runs the README's CLI example: a session's two messages come in order", {
    timeout: README_CLI_LINES.length * CLI_TIMEOUT_MS + 30_000,
  }, async () => {
    const outputs = await runLines(README_CLI_LINES, ["carts"], false);
    const received = outputs[README_CLI_LINES.findIndex((line) => line.includes(" receive "))];
    expect(received).toMatch(/apple[\s\S]*pear/);
  });
});
