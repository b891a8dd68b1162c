/**
 * The generated Python client (gen/python) against an in-process broker: the example in
 * examples/python/sessions_demo.py, run with Debian's python3 (which sees python3-grpcio).
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSessionbus } from "../src/app.js";
import { startInProcessBroker } from "./support/grpc-broker.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const PYTHON = "/usr/bin/python3";
const DEMO = join(projectRoot, "examples/python/sessions_demo.py");
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
      env,
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
      const result = await run(PYTHON, [DEMO, queue], {
        ...process.env,
        SESSIONBUS_ADDR: `127.0.0.1:${broker.port}`,
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
});
