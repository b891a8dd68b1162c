/**
 * The Python client as a package (clients/python, pyproject.toml): installed with pip into a
 * fresh virtual environment that sees Debian's python3-grpcio and python3-protobuf
 * (`--system-site-packages`), with no package index (`--no-index`) and Debian's setuptools
 * (`--no-build-isolation`), then used from outside the checkout against a broker: the
 * package README's sample, and test/support/python_package_check.py through the rest of
 * what its client offers, and the Python sample of the project's README and docs/python.md.
 *
 * The package folder is copied first (its link to gen/python followed), so that pip's build
 * files stay out of the checkout. pip runs without the machine's pip configuration and PIP_*
 * variables, so nothing but the folder and the system's packages can be installed.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { devNull, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSessionbus } from "../src/app.js";
import { docBlock } from "./support/doc-samples.js";
import { startInProcessBroker } from "./support/grpc-broker.js";
import { testConnectionString } from "./support/test-credentials.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const packageDir = join(projectRoot, "clients/python");
const SYSTEM_PYTHON = "/usr/bin/python3";
const PROCESS_TIMEOUT_MS = 120_000;
/** One session's three messages, in the order sent. */
const SESSION_IN_ORDER = /^session (a: \['a1', 'a2', 'a3'\]|b: \['b1', 'b2', 'b3'\])$/;

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without pip's settings from this machine. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith("PIP_")),
  );
  return { ...env, PIP_CONFIG_FILE: devNull, PYTHONDONTWRITEBYTECODE: "1", ...extra };
}

/** Runs a command without blocking the event loop (the in-process broker has to answer). */
function run(
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<Finished> {
  const child = spawn(command, args, {
    cwd,
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
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The body of the fenced block right after `<!-- marker -->` in the package's README. */
function readmeBlock(marker: string): string {
  return docBlock("clients/python/README.md", marker);
}

describe("Python package sessionbus-client", { timeout: PROCESS_TIMEOUT_MS }, () => {
  let broker: RunningSessionbus;
  let work: string;
  let python: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "sessionbus-python-package-"));
    const source = join(work, "source");
    cpSync(packageDir, source, { recursive: true, dereference: true });
    const venv = join(work, "venv");
    const created = await run(
      SYSTEM_PYTHON,
      ["-m", "venv", "--system-site-packages", venv],
      work,
      cleanEnv(),
    );
    expect(created.code, created.stderr).toBe(0);
    python = join(venv, "bin/python");
    const installed = await run(
      python,
      ["-m", "pip", "install", "--no-build-isolation", "--no-index", "--quiet", source],
      work,
      cleanEnv(),
    );
    expect(installed.code, `${installed.stdout}${installed.stderr}`).toBe(0);
    broker = await startInProcessBroker();
  }, PROCESS_TIMEOUT_MS * 3);

  afterAll(async () => {
    await broker?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("installs the client and the generated stubs, with the dependencies it declares met", async () => {
    const where = await run(
      python,
      [
        "-c",
        "import sessionbus_client, sessionbus.v1.messaging_service_pb2_grpc as s; print(sessionbus_client.__file__); print(s.__file__); print(sessionbus_client.__version__)",
      ],
      work,
      cleanEnv(),
    );
    expect(where.code, where.stderr).toBe(0);
    const [client, stubs, version] = where.stdout.trim().split("\n");
    const sitePackages = join(work, "venv/lib/");
    expect(client?.startsWith(sitePackages), client).toBe(true);
    expect(stubs?.startsWith(sitePackages), stubs).toBe(true);
    expect(version).toBe("0.1.0");

    // pip has checked that the environment meets them (it may install nothing else here).
    const declared = await run(
      python,
      [
        "-c",
        // Older setuptools write "grpcio (>=1.51)".
        'from importlib.metadata import requires, version; print([r.translate({32: None, 40: None, 41: None}) for r in requires("sessionbus-client")]); print(version("grpcio"), version("protobuf"))',
      ],
      work,
      cleanEnv(),
    );
    expect(declared.code, declared.stderr).toBe(0);
    const [requirements, versions] = declared.stdout.trim().split("\n");
    expect(requirements).toBe("['grpcio>=1.51', 'protobuf>=3.20']");
    expect(versions).toMatch(/^\d+\.\d+\S* \d+\.\d+\S*$/);
  });

  it("runs its README sample against a broker", async () => {
    writeFileSync(join(work, "carts.py"), readmeBlock("sample: python-package"));
    const result = await run(
      python,
      ["carts.py"],
      work,
      cleanEnv({
        SESSIONBUS_CONNECTION_STRING: testConnectionString(broker.url),
        SESSIONBUS_QUEUE: `py-package-${randomUUID().slice(0, 8)}`,
      }),
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(readmeBlock("sample-output: python-package"));
  });

  for (const document of ["README.md", "docs/python.md"]) {
    it(`runs the Python sample of ${document} against a broker`, async () => {
      writeFileSync(join(work, "orders.py"), docBlock(document, "sample: python"));
      const result = await run(
        python,
        ["orders.py"],
        work,
        cleanEnv({
          SESSIONBUS_CONNECTION_STRING: testConnectionString(broker.url),
          SESSIONBUS_QUEUE: `py-readme-${randomUUID().slice(0, 8)}`,
        }),
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toBe("customer-1: order 1\n");
    });
  }

  it("receives, settles four ways, keeps session state and raises the class of each reason", async () => {
    const check = join(work, "check.py");
    cpSync(join(projectRoot, "test/support/python_package_check.py"), check);
    const result = await run(
      python,
      [check, `py-check-${randomUUID().slice(0, 8)}`],
      work,
      cleanEnv({
        SESSIONBUS_CONNECTION_STRING: testConnectionString(broker.url),
        SESSIONBUS_ADDR: `127.0.0.1:${broker.port}`,
      }),
    );
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual([
      "created: maxDelivery=2 lock=20s ttl=3600s duplicates=True maxSize=10485760",
      "updated: maxDelivery=3 lock=20s",
      "listed: True",
      "duplicate: True True",
      "peeked: ['one', 'two', 'three']",
      "received: one two three; properties [7, True, 1.5, 't']",
      "abandoned comes again: one delivery 2",
      "deferred: three MESSAGE_STATE_DEFERRED",
      "dead-lettered: two bad not wanted",
      "empty: True",
      "held elsewhere: SESSION_CANNOT_BE_LOCKED",
      expect.stringMatching(SESSION_IN_ORDER),
      "state: b'\\x00\\x01state'",
      "renewed: True",
      "cleared: None",
      expect.stringMatching(SESSION_IN_ORDER),
      "no session left: True",
      "without a session: SESSION_REQUIRED True",
      "missing: ENTITY_NOT_FOUND True",
      "exists: ENTITY_ALREADY_EXISTS",
      "invalid: INVALID_ARGUMENT properties.lock_duration",
      "no reply: REQUEST_TIMED_OUT",
      "without a token: TOKEN_MISSING",
    ]);
  });
});
