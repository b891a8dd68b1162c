/**
 * The generated Python client (gen/python) with the hand-written helpers in
 * clients/python/sessionbus_client (connection strings, tokens, a channel whose calls carry
 * one) against an in-process broker: the example in examples/python/sessions_demo.py, run
 * with Debian's python3 (which sees python3-grpcio), and the helpers' own unit tests.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSessionbus } from "../src/app.js";
import { createSasToken } from "../src/client/index.js";
import { startInProcessBroker } from "./support/grpc-broker.js";
import { testConnectionString } from "./support/test-credentials.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const PYTHON = "/usr/bin/python3";
const DEMO = join(projectRoot, "examples/python/sessions_demo.py");
const CLIENT_DIR = join(projectRoot, "clients/python");
const PROCESS_TIMEOUT_MS = 60_000;

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (the in-process broker has to answer it). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: projectRoot,
      // No __pycache__ in the checkout.
      env: { ...env, PYTHONDONTWRITEBYTECODE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: PROCESS_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

let broker: RunningSessionbus;

beforeAll(async () => {
  broker = await startInProcessBroker();
});

afterAll(async () => {
  await broker?.close();
});

describe("Python client example", () => {
  it(
    "receives a session in order, keeps its state, and gets a reply in a reply session",
    async () => {
      const queue = `py-demo-${randomUUID()}`;
      // The address comes from the connection string too.
      const { SESSIONBUS_ADDR: _addr, ...inherited } = process.env;
      const result = await run(PYTHON, [DEMO, queue], {
        ...inherited,
        SESSIONBUS_CONNECTION_STRING: testConnectionString(broker.url),
      });
      const context = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
      expect(result.signal, context).toBeNull();
      expect(result.code, context).toBe(0);

      const lines = result.stdout.trim().split("\n");
      const session = /^session: ([AB])$/.exec(lines[0] ?? "")?.[1];
      expect(session, context).toBeDefined();
      expect(lines, context).toEqual([
        `session: ${session}`,
        `${session}: 1`,
        `${session}: 2`,
        `${session}: 3`,
        "state: ok",
        "closed",
        "reply: pong to ping",
      ]);
    },
    PROCESS_TIMEOUT_MS + 10_000,
  );

  it(
    "without a connection string, fails with the broker's reason and says what to set",
    async () => {
      const result = await run(PYTHON, [DEMO, `py-demo-${randomUUID()}`], {
        ...process.env,
        SESSIONBUS_CONNECTION_STRING: "",
        SESSIONBUS_ADDR: `127.0.0.1:${broker.port}`,
      });
      expect(result.code, result.stdout).not.toBe(0);
      expect(result.stderr).toContain("sessions_demo: UNAUTHENTICATED (TOKEN_MISSING): ");
      expect(result.stderr).toContain("Set SESSIONBUS_CONNECTION_STRING");
    },
    PROCESS_TIMEOUT_MS + 10_000,
  );
});

describe("Python client helpers (clients/python/sessionbus_client)", () => {
  it(
    "pass their unit tests",
    async () => {
      const result = await run(
        PYTHON,
        ["-m", "unittest", "discover", "-s", join(CLIENT_DIR, "tests")],
        process.env,
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(/^OK$/m);
    },
    PROCESS_TIMEOUT_MS + 10_000,
  );

  it("mint the same token as the TypeScript SDK", async () => {
    const inputs = {
      resourceUri: "sb://127.0.0.1:50051/events/subscriptions/audit",
      keyName: "listen-only",
      key: "a2V5IHdpdGggw7xuaWPDtmRlIGFuZCArLz0=+/=ü",
      expiresAtSeconds: 1_800_000_000,
    };
    const script = [
      "import json, sys",
      `sys.path.insert(0, ${JSON.stringify(CLIENT_DIR)})`,
      "from sessionbus_client import create_sas_token",
      "i = json.loads(sys.argv[1])",
      "print(create_sas_token(i['resourceUri'], i['keyName'], i['key'], i['expiresAtSeconds']))",
    ].join("\n");
    const result = await run(PYTHON, ["-c", script, JSON.stringify(inputs)], process.env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(createSasToken(inputs));
  });
});
