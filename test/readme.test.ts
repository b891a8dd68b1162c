import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/ts/grpc/health/v1/health_pb.js";
import { AdminService } from "../gen/ts/sessionbus/v1/admin_service_pb.js";
import type { RunningSessionbus } from "../src/app.js";
import { sasInterceptor } from "../src/client/index.js";
import { listeningUrl, parseLogLine } from "../src/observability/log-line.js";
import { docBlock, readDoc } from "./support/doc-samples.js";
import { startInProcessBroker } from "./support/grpc-broker.js";
import { rootToken, testConnectionString } from "./support/test-credentials.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const tsx = join(projectRoot, "node_modules/.bin/tsx");
const tsc = join(projectRoot, "node_modules/.bin/tsc");

/**
 * How long a child process may take before the test fails instead of hanging: generous, as
 * tsc on a busy 2-core machine took over 30 s.
 */
const PROCESS_TIMEOUT_MS = 90_000;
/** Inside the project, so the sample resolves @connectrpc/* and gen/ as a user's file would. */
const SAMPLE_FILE = join(projectRoot, "test/.readme-sample.tmp.ts");

/** A marked block of README.md. */
function fencedBlock(marker: string): string {
  return docBlock("README.md", marker);
}

/** A one-line shell command of the README, e.g. the quick start. */
function readmeCommand(marker: string): string {
  const lines = fencedBlock(marker).trim().split("\n");
  expect(lines, `the "${marker}" block of README.md should be a single line`).toHaveLength(1);
  return lines[0] as string;
}

function withTimeout<T>(work: Promise<T>, what: string, ms = PROCESS_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

interface Finished {
  code: number | null;
  output: string;
  stdout: string;
}

/** Runs a command without blocking the event loop (an in-process broker has to answer it). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  const child = spawn(command, args, { cwd: projectRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
    output += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk;
  });
  const finished = new Promise<Finished>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, output, stdout }));
  });
  return withTimeout(finished, `${command} ${args.join(" ")}`).catch((error: unknown) => {
    child.kill("SIGKILL");
    throw error;
  });
}

describe("TypeScript sample of docs/api.md (Connect without the SDK)", () => {
  let broker: RunningSessionbus;
  const source = docBlock("docs/api.md", "sample: typescript");

  beforeAll(async () => {
    broker = await startInProcessBroker();
    // The sample's file sits at the top of the project; this copy sits in test/.
    expect(source).toContain('from "./gen/');
    writeFileSync(
      SAMPLE_FILE,
      source
        .replaceAll('from "./gen/', 'from "../gen/')
        .replaceAll('from "./src/', 'from "../src/'),
    );
  });

  afterAll(async () => {
    rmSync(SAMPLE_FILE, { force: true });
    await broker?.close();
  });

  it("prints what docs/api.md says it prints", async () => {
    const expected = docBlock("docs/api.md", "sample-output: typescript");
    expect(expected).toContain("MESSAGE_ALREADY_SETTLED");

    const result = await run(tsx, [SAMPLE_FILE], {
      ...process.env,
      SESSIONBUS_URL: broker.url,
      SESSIONBUS_CONNECTION_STRING: testConnectionString(broker.url),
      SESSIONBUS_QUEUE: `readme-${randomUUID()}`,
    });

    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toBe(expected);
    expect(result.stdout).toContain('received "hello", delivery 1\ncompleted\n');
  });

  it("reaches the broker at the default address unless SESSIONBUS_URL says otherwise", () => {
    expect(source).toContain('process.env.SESSIONBUS_URL ?? "http://127.0.0.1:50051"');
  });

  it("signs its calls with the connection string in SESSIONBUS_CONNECTION_STRING", () => {
    expect(source).toContain("sasInterceptor(process.env.SESSIONBUS_CONNECTION_STRING");
  });

  it("type-checks under the project's strict settings", async () => {
    const result = await run(
      tsc,
      [
        "--noEmit",
        "--strict",
        "--target",
        "ES2022",
        "--lib",
        "ES2023",
        "--module",
        "NodeNext",
        "--moduleResolution",
        "NodeNext",
        "--types",
        "node",
        "--verbatimModuleSyntax",
        "--noUnusedLocals",
        "--skipLibCheck",
        SAMPLE_FILE,
      ],
      process.env,
    );
    expect(result.code, result.output).toBe(0);
  });
});

describe("README quick start", () => {
  it("tests with the command CI runs", () => {
    const command = readmeCommand("command: test");
    expect(command).toBe("npm run setup && npm test");
    const ciLines = readFileSync(join(projectRoot, ".ci/run"), "utf8")
      .split("\n")
      .map((line) => line.trim());
    expect(
      ciLines.some((line) => line.startsWith(command)),
      `.ci/run should run the README's test command "${command}" as a command of its own`,
    ).toBe(true);
  });

  it("starts the broker with npm start, which compiles src/ and runs src/main.ts as JavaScript", () => {
    expect(readmeCommand("command: start")).toBe("npm run setup && npm start");
    const scripts = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")).scripts;
    expect(scripts.start).toBe("node scripts/build.mjs --if-stale && node dist/src/main.js");
    expect(scripts.build).toBe("node scripts/build.mjs");
  });

  it("npm start serves on an embedded nats-server and exits 0 on SIGTERM", {
    timeout: 4 * PROCESS_TIMEOUT_MS,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "sessionbus-readme-start-"));
    const { NATS_URL: _external, SESSIONBUS_HOST: _host, ...inherited } = process.env;
    // What npm start runs, in its two steps: compile (when src/ changed since the last
    // build), then the broker as JavaScript (in its own process group, so a failed test can
    // stop the broker and its nats-server).
    const built = await run(
      process.execPath,
      [join(projectRoot, "scripts/build.mjs"), "--if-stale"],
      process.env,
    );
    expect(built.code, built.output).toBe(0);
    const child = spawn(process.execPath, ["dist/src/main.js"], {
      cwd: projectRoot,
      env: {
        ...inherited,
        SESSIONBUS_PORT: "0",
        SESSIONBUS_HTTP_PORT: "0",
        SESSIONBUS_DATA_DIR: dataDir,
      },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const lines: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
    try {
      const listening = await withTimeout(waitForLine(child, lines, exited), "startup");
      const url = listeningUrl(listening);
      expect(url, listening).toBeDefined();
      expect(listening).toContain(`embedded nats-server at nats://127.0.0.1:`);

      const health = createClient(Health, createGrpcTransport({ baseUrl: url as string }));
      expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
      expect(existsSync(join(dataDir, "jetstream"))).toBe(true);

      // Auth is on: the log names the connection string file, and the README's first-use
      // lines (with this run's data directory) use it through the CLI.
      const file = join(dataDir, "connection-string");
      expect(lines.join("\n")).toContain(file);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const anonymous = await createClient(
        AdminService,
        createGrpcTransport({ baseUrl: url as string }),
      )
        .listQueues({})
        .catch((error: unknown) => error);
      expect(String(anonymous)).toMatch(/unauthenticated/i);
      const { SESSIONBUS_CONNECTION_STRING: _given, SESSIONBUS_URL: _url, ...clean } = process.env;
      const firstUse = fencedBlock("command: first-use").replaceAll("data/", `${dataDir}/`);
      const used = await run("bash", ["-euo", "pipefail", "-c", firstUse], clean);
      expect(used.code, used.output).toBe(0);
      expect(used.stdout).toContain("orders");

      child.kill("SIGTERM");
      const code = await withTimeout(exited, "shutdown after SIGTERM");
      expect(code, lines.join("\n")).toBe(0);
      expect(lines.map((line) => parseLogLine(line)?.msg)).toContain(
        "SIGTERM received, shutting down",
      );
    } finally {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(-child.pid, "SIGKILL");
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** Resolves with the "listening" line; rejects when the process ends before printing it. */
function waitForLine(
  child: ChildProcess,
  lines: string[],
  exited: Promise<number | null>,
): Promise<string> {
  return new Promise((resolve, reject) => {
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on("line", (line) => {
        lines.push(line);
        if (listeningUrl(line) !== undefined) resolve(line);
      });
    }
    void exited.then((code) => {
      reject(new Error(`npm start exited (code ${code}) before listening:\n${lines.join("\n")}`));
    });
  });
}

describe("durability across a crash of the store", () => {
  const documents = {
    "docs/configuration.md": readDoc("docs/configuration.md"),
    "docs/architecture.md": readDoc("docs/architecture.md"),
  };

  for (const [name, text] of Object.entries(documents)) {
    it(`${name} says what a crash of nats-server 2.9.10 means and what removes it`, () => {
      const flat = text.replace(/\s+/g, " ");
      const required: [string, RegExp][] = [
        ["2.9.10 lacks the option", /nats-server 2\.9\.10[^.]*has no `sync_interval`/],
        ["the guarantee", /at.least.once/i],
        ["settled messages may return", /completed or dead-lettered [^.]*may be delivered again/],
        ["the version that removes it", /nats-server 2\.10\.0 or later/],
        ["the option used then", /sync_interval: always/],
        ["the other remedy", /replication/],
      ];
      const missing = required.filter(([, pattern]) => !pattern.test(flat)).map(([what]) => what);
      expect(missing, `${name} lacks these points of the durability note`).toEqual([]);
    });
  }
});

describe("SDK sample of docs/sdk.md", () => {
  let broker: RunningSessionbus;
  const source = docBlock("docs/sdk.md", "sample: sdk");
  const file = join(projectRoot, "test/.readme-sdk-sample.tmp.ts");

  beforeAll(async () => {
    broker = await startInProcessBroker();
    expect(source).toContain('from "./src/client/index.js"');
    writeFileSync(file, source.replaceAll('from "./src/', 'from "../src/'));
  });

  afterAll(async () => {
    rmSync(file, { force: true });
    await broker?.close();
  });

  it("processes each session in order, as docs/sdk.md shows", async () => {
    const result = await run(tsx, [file], {
      ...process.env,
      SESSIONBUS_CONNECTION_STRING: testConnectionString(broker.url),
      SESSIONBUS_QUEUE: `readme-sdk-${randomUUID()}`,
    });
    expect(result.code, result.output).toBe(0);
    // Which customer comes first is up to accept-next; each one's orders are in order.
    const lines = result.stdout.trim().split("\n").sort();
    expect(lines).toEqual(docBlock("docs/sdk.md", "sample-output: sdk").trim().split("\n").sort());
    for (const customer of ["alice", "bob"]) {
      const orders = result.stdout.split("\n").filter((l) => l.startsWith(`${customer}:`));
      expect(orders).toEqual([1, 2, 3].map((n) => `${customer}: order ${n} (delivery 1)`));
    }
  });
});

describe("SDK example of the README", () => {
  let broker: RunningSessionbus;
  const source = fencedBlock("sample: sdk-quick");
  const file = join(projectRoot, "test/.readme-sdk-quick.tmp.ts");

  beforeAll(async () => {
    broker = await startInProcessBroker();
    expect(source).toContain('from "./src/client/index.js"');
    writeFileSync(file, source.replaceAll('from "./src/', 'from "../src/'));
  });

  afterAll(async () => {
    rmSync(file, { force: true });
    await broker?.close();
  });

  it("receives a session's two messages in order and prints what the README says", async () => {
    const queue = `readme-quick-${randomUUID()}`;
    const result = await run(tsx, [file], {
      ...process.env,
      SESSIONBUS_CONNECTION_STRING: testConnectionString(broker.url),
      SESSIONBUS_QUEUE: queue,
    });
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toBe(fencedBlock("sample-output: sdk-quick"));
    // It cleans up after itself, so a second run works too.
    const admin = createClient(
      AdminService,
      createGrpcTransport({
        baseUrl: broker.url,
        interceptors: [sasInterceptor(testConnectionString(broker.url))],
      }),
    );
    const left = await admin.getQueue({ name: queue }).catch((error: unknown) => error);
    expect(String(left)).toMatch(/not.found/i);
  });
});

// The README's curl lines and the same block in docs/api.md.
for (const document of ["README.md", "docs/api.md"]) {
  describe(`curl lines of ${document}`, () => {
    let broker: RunningSessionbus;

    beforeAll(async () => {
      broker = await startInProcessBroker();
    });

    afterAll(async () => {
      await broker?.close();
    });

    it("create a queue, send to it and peek it on the HTTP port, with a token", async () => {
      const queue = `readme-curl-${randomUUID().slice(0, 8)}`;
      // Continued lines joined, as the shell reads them; one command per curl.
      const commands = docBlock(document, "sample: curl")
        .replaceAll("\\\n", " ")
        .split("\n")
        .filter((line) => line.startsWith("curl "))
        .map((line) =>
          line
            .replaceAll("127.0.0.1:50052", `127.0.0.1:${broker.httpPort}`)
            .replace(/"(orders|invoices)"/g, `"${queue}"`),
        );
      expect(commands).toHaveLength(3);
      const outputs: unknown[] = [];
      for (const command of commands) {
        // $TOKEN, as `TOKEN=$(npx sessionbus token)` sets it.
        const result = await run("bash", ["-c", command], { ...process.env, TOKEN: rootToken() });
        expect(result.code, `${command}\n${result.output}`).toBe(0);
        outputs.push(JSON.parse(result.stdout));
      }
      expect(outputs[0]).toMatchObject({ queue: { name: queue } });
      expect(outputs[1]).toMatchObject({ results: [{ sequenceNumber: "1" }] });
      expect(outputs[2]).toMatchObject({
        messages: [{ message: { body: "aGVsbG8=" }, sequenceNumber: "1" }],
      });
    });
  });
}
