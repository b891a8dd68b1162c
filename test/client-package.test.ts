/**
 * The TypeScript client as an npm package (packages/client): `npm pack` gives a tarball of
 * compiled JavaScript and declarations that installs into an empty project, where its
 * README's sample runs as a plain `.mjs` file under Node (no TypeScript tooling there)
 * against a broker, and a TypeScript file type-checks against its declarations.
 *
 * The install takes the dependencies from the npm cache (`--offline`); where the cache lacks
 * the registry's metadata of a package (a cache filled by `npm ci`, which fetches tarballs
 * only), it asks the registry for that and takes the tarballs from the cache
 * (`--prefer-offline`).
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSessionbus } from "../src/app.js";
import { docBlock } from "./support/doc-samples.js";
import { startInProcessBroker } from "./support/grpc-broker.js";
import { testConnectionString } from "./support/test-credentials.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const packageDir = join(projectRoot, "packages/client");
/** npm pack compiles with tsc: tens of seconds on a busy 2-core machine. */
const PROCESS_TIMEOUT_MS = 240_000;

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (the in-process broker has to answer). */
function run(
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
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
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The body of the fenced block right after `<!-- marker -->` in the package's README. */
function readmeBlock(marker: string): string {
  return docBlock("packages/client/README.md", marker);
}

/** Without npm's own variables: npm run test would point the child npm at this project. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith("npm_")),
  );
}

describe("npm package @sessionbus/client", { timeout: PROCESS_TIMEOUT_MS * 2 }, () => {
  let broker: RunningSessionbus;
  let work: string;
  let tarball: string;
  let consumer: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "sessionbus-client-package-"));
    const packed = await run(
      "npm",
      ["pack", "--pack-destination", work, "--loglevel=error"],
      packageDir,
      npmEnv(),
    );
    expect(packed.code, `${packed.stdout}${packed.stderr}`).toBe(0);
    const [file] = readdirSync(work).filter((name) => name.endsWith(".tgz"));
    expect(file, readdirSync(work).join(", ")).toBeDefined();
    tarball = join(work, file as string);

    consumer = join(work, "consumer");
    mkdirSync(consumer);
    writeFileSync(
      join(consumer, "package.json"),
      JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }),
    );
    const install = (cacheMode: string) =>
      run(
        "npm",
        ["install", tarball, cacheMode, "--no-audit", "--no-fund", "--loglevel=error"],
        consumer,
        npmEnv(),
      );
    let installed = await install("--offline");
    if (installed.code !== 0 && installed.stderr.includes("ENOTCACHED")) {
      installed = await install("--prefer-offline");
    }
    expect(installed.code, installed.stderr).toBe(0);

    broker = await startInProcessBroker();
  }, PROCESS_TIMEOUT_MS * 3);

  afterAll(async () => {
    await broker?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("holds compiled JavaScript and declarations of the client and the generated code only", async () => {
    const listed = await run("tar", ["-tzf", tarball], work);
    expect(listed.code, listed.stderr).toBe(0);
    const files = listed.stdout.trim().split("\n").sort();
    const outside = files.filter(
      (file) =>
        !/^package\/dist\/(src\/client|gen\/ts\/sessionbus\/v1)\/.+\.(js|d\.ts)$/.test(file) &&
        !["package/package.json", "package/README.md"].includes(file),
    );
    expect(outside).toEqual([]);
    expect(files).toContain("package/dist/src/client/index.js");
    expect(files).toContain("package/dist/src/client/index.d.ts");
    expect(files).toContain("package/dist/gen/ts/sessionbus/v1/messaging_service_pb.js");
  });

  it("depends only on the RPC libraries and the OpenTelemetry API, at the versions the repository runs its tests with", () => {
    const own = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      devDependencies?: unknown;
      peerDependencies?: unknown;
    };
    const root = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(own.dependencies).sort()).toEqual([
      "@bufbuild/protobuf",
      "@connectrpc/connect",
      "@connectrpc/connect-node",
      "@opentelemetry/api",
    ]);
    for (const [name, version] of Object.entries(own.dependencies)) {
      expect(version, name).toBe(root.dependencies[name]);
    }
    expect(own.devDependencies).toBeUndefined();
    expect(own.peerDependencies).toBeUndefined();
    const modules = join(consumer, "node_modules");
    const installed = readdirSync(modules)
      .filter((name) => !name.startsWith("."))
      .flatMap((name) =>
        name.startsWith("@")
          ? readdirSync(join(modules, name)).map((inner) => `${name}/${inner}`)
          : [name],
      )
      .sort();
    expect(installed).toEqual([
      "@bufbuild/protobuf",
      "@connectrpc/connect",
      "@connectrpc/connect-node",
      "@opentelemetry/api",
      "@sessionbus/client",
    ]);
  });

  it("runs its README sample as plain JavaScript against a broker", async () => {
    writeFileSync(join(consumer, "carts.mjs"), readmeBlock("sample: package"));
    const result = await run(process.execPath, ["carts.mjs"], consumer, {
      ...process.env,
      SESSIONBUS_CONNECTION_STRING: testConnectionString(broker.url),
      SESSIONBUS_QUEUE: `package-${randomUUID().slice(0, 8)}`,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(readmeBlock("sample-output: package"));
  });

  it("type-checks a TypeScript file against its declarations", async () => {
    writeFileSync(
      join(consumer, "check.ts"),
      [
        'import { createSessionBusClient, type ReceivedMessage, SessionLockLostError } from "@sessionbus/client";',
        'import { MessagingService } from "@sessionbus/client/proto/messaging_service_pb";',
        'const client = createSessionBusClient({ url: "http://127.0.0.1:1" });',
        'const received: Promise<ReceivedMessage | undefined> = client.receiver("q").receiveMessage();',
        'const lost = (error: unknown): boolean => error instanceof SessionLockLostError && error.reason === "SESSION_LOCK_LOST";',
        "const method: string = MessagingService.method.send.name;",
        "// @ts-expect-error: a queue option that does not exist",
        'void client.createQueue("q", { requiresSessions: true });',
        "export { lost, method, received };",
      ].join("\n"),
    );
    writeFileSync(
      join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ["check.ts"],
      }),
    );
    const tsc = join(projectRoot, "node_modules/typescript/bin/tsc");
    const checked = await run(process.execPath, [tsc, "-p", "tsconfig.json"], consumer);
    expect(checked.code, checked.stdout).toBe(0);
  });
});
