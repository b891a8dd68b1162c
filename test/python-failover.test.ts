/**
 * Broker failover in the Python helper (clients/python/sessionbus_client): create_channel
 * with a connection string listing two broker processes on the test run's nats-server;
 * calls go to the first, which the test then kills with SIGKILL, and the same calls go on
 * through the second. Run with Debian's python3 (python3-grpcio). Also checks that the
 * Python helper repeats exactly the methods the TypeScript SDK repeats.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, inject, it } from "vitest";
import { RETRY_AFTER_BROKEN_CONNECTION } from "../src/client/failover/retry-policy.js";
import { createSessionBusClient } from "../src/client/index.js";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { uniqueName, within } from "./support/grpc-client.js";
import { testConnectionString } from "./support/test-credentials.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const PYTHON = "/usr/bin/python3";
const CHECK = "test/support/python_failover_check.py";
const STEP_BOUND_MS = 60_000;

const brokers: BrokerProcess[] = [];
const children: ChildProcessWithoutNullStreams[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  await Promise.all(brokers.splice(0).map((broker) => broker.stop()));
});

/** The Python process, line by line. */
function python(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(PYTHON, args, {
    cwd: projectRoot,
    env: { ...env, PYTHONDONTWRITEBYTECODE: "1" },
  });
  children.push(child);
  /** Lines not taken yet, and whoever waits for the next one. */
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  let stderr = "";
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    wake?.();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  /** Resolves with the next line; rejects when the process ends without one. */
  const nextLine = async (): Promise<string> => {
    if (lines.length === 0) {
      const arrived = new Promise<void>((resolve) => {
        wake = resolve;
      });
      const ended = exited.then(() => undefined);
      await within(Promise.race([arrived, ended]), STEP_BOUND_MS, "a line from python");
    }
    const line = lines.shift();
    if (line === undefined) throw new Error(`python ended without the line. stderr:\n${stderr}`);
    return line;
  };
  return { child, nextLine, exited, stderr: () => stderr };
}

describe("broker failover of the Python helper", () => {
  it("a channel to two brokers goes on through the second when the first is killed", {
    timeout: 4 * STEP_BOUND_MS,
  }, async () => {
    const [first, second] = await Promise.all([
      startBrokerProcess({ natsUrl: inject("natsUrl") }),
      startBrokerProcess({ natsUrl: inject("natsUrl") }),
    ]);
    brokers.push(first, second);
    const queue = uniqueName("py-failover");
    const run = python([CHECK, queue], {
      ...process.env,
      SESSIONBUS_CONNECTION_STRING: testConnectionString([first.url, second.url]),
    });
    try {
      expect(await run.nextLine()).toBe("sent before");
      expect(await run.nextLine()).toBe("ready");

      first.kill("SIGKILL");
      const exit = await within(first.exited, 10_000, "the killed broker to exit");
      expect(exit.signal).toBe("SIGKILL");
      run.child.stdin.write("killed\n");

      // Only the second broker is alive: every answer from here on is its.
      expect(await run.nextLine()).toBe(`get-queue ${queue}`);
      expect(await run.nextLine()).toBe("sent after");
      expect(await run.nextLine()).toBe("peek before,after");
      expect(await within(run.exited, STEP_BOUND_MS, "python to exit"), run.stderr()).toBe(0);
    } finally {
      const admin = createSessionBusClient({ connectionString: testConnectionString(second.url) });
      await admin.deleteQueue(queue).catch(() => undefined);
      await admin.close();
    }
  });

  it("repeats after a broken connection exactly the methods the TypeScript SDK repeats", async () => {
    const printed = python(
      [
        "-c",
        "import json, sys; sys.path.insert(0, 'clients/python'); " +
          "from sessionbus_client.failover import RETRIED_METHODS as m; " +
          "print(json.dumps(sorted(x for v in m.values() for x in v)))",
      ],
      process.env,
    );
    const fromPython = JSON.parse(await printed.nextLine()) as string[];
    const fromTypeScript = Object.entries(RETRY_AFTER_BROKEN_CONNECTION)
      .filter(([, rule]) => rule === "yes")
      .map(([method]) => method)
      .sort();
    expect(fromPython).toEqual(fromTypeScript);
  });
});
