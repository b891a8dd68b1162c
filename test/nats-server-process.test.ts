import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type NatsServerProcess, startNatsServer } from "../src/store/nats-server-process.js";

const STREAM = "PROBE";
const SUBJECT = "probe.hello";

let storeDir: string;
const servers: NatsServerProcess[] = [];

async function start(): Promise<NatsServerProcess> {
  const server = await startNatsServer({ storeDir });
  servers.push(server);
  return server;
}

/** A client connection with the credentials the server was started with. */
function connectTo(server: NatsServerProcess) {
  const credentials = server.credentials;
  if (credentials === undefined) throw new Error("the server was started without credentials");
  return connect({ servers: server.url, user: credentials.user, pass: credentials.password });
}

/** Resolves with the socket error code, or "connected" when the port accepts. */
function probePort(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeEach(async () => {
  storeDir = await mkdtemp(join(tmpdir(), "sessionbus-nats-process-"));
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  await rm(storeDir, { recursive: true, force: true });
});

describe("startNatsServer", () => {
  it("starts a JetStream server that accepts publishes", async () => {
    const server = await start();
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);

    const nc = await connectTo(server);
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: STREAM, subjects: [SUBJECT] });
      const ack = await jetstream(nc).publish(SUBJECT, "hello");
      expect(ack).toMatchObject({ stream: STREAM, seq: 1 });
    } finally {
      await nc.close();
    }
  });

  it("sets monitorUrl only when a monitor port is asked for", async () => {
    const server = await start();
    expect(server.monitorUrl).toBeUndefined();
  });

  it("stop() waits for the exit, after which the port refuses connections", async () => {
    const server = await start();
    expect(await probePort(server.port)).toBe("connected");

    await server.stop();

    // No waiting on exited here: stop() itself must only resolve once the process is gone.
    expect(await probePort(server.port)).toBe("ECONNREFUSED");
    await expect(server.stop()).resolves.toBeUndefined();
  });

  it("explains how to install nats-server when the binary is missing", async () => {
    const attempt = startNatsServer({ storeDir, binary: "/nonexistent/nats-server" });
    await expect(attempt).rejects.toThrow(
      'nats-server not found (looked for "/nonexistent/nats-server"). Install it with: apt-get install -y nats-server',
    );
  });

  it("keeps stored messages across a crash (SIGKILL) and restart on the same storeDir", async () => {
    const first = await start();
    const writer = await connectTo(first);
    try {
      const jsm = await jetstreamManager(writer);
      await jsm.streams.add({ name: STREAM, subjects: [SUBJECT] });
      await jetstream(writer).publish(SUBJECT, "survives");
    } finally {
      await writer.close();
    }

    first.kill("SIGKILL");
    expect(await first.exited).toBeNull();

    const second = await start();
    const reader = await connectTo(second);
    try {
      const jsm = await jetstreamManager(reader);
      const info = await jsm.streams.info(STREAM);
      expect(info.state.messages).toBe(1);
      const stored = await jsm.streams.getMessage(STREAM, { seq: 1 });
      expect(stored?.string()).toBe("survives");
    } finally {
      await reader.close();
    }
  });
});

describe("a nats-server left running on the store directory", () => {
  it("is stopped with SIGTERM, so it shuts down cleanly, before the new one starts", async () => {
    // Started the way no supervisor would stop it: directly, output to a file of its own.
    const port = await freePort();
    const logFd = openSync(join(storeDir, "left.log"), "a");
    const left = spawn(
      "/usr/sbin/nats-server",
      [
        "-a",
        "127.0.0.1",
        "-p",
        String(port),
        "-js",
        "-sd",
        storeDir,
        "-P",
        join(storeDir, "nats-server.pid"),
      ],
      { stdio: ["ignore", logFd, logFd] },
    );
    closeSync(logFd);
    const leftExit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolve) => left.once("exit", (code, signal) => resolve({ code, signal })),
    );
    try {
      const deadline = Date.now() + 10_000;
      while ((await probePort(port)) !== "connected") {
        if (Date.now() > deadline) throw new Error("the left-over nats-server did not start");
        await delay(50); // a polling interval of a bounded wait
      }

      const server = await start();

      expect(left.exitCode !== null || left.signalCode !== null, "the old one has exited").toBe(
        true,
      );
      expect((await leftExit).signal).toBeNull();
      expect(await readFile(join(storeDir, "left.log"), "utf8")).toContain("Server Exiting..");
      expect(await probePort(server.port)).toBe("connected");
    } finally {
      left.kill("SIGKILL");
    }
  });
});

describe("sync_interval: always, only where nats-server knows it", () => {
  it("starts nats-server 2.9.10 without it (that version refuses the option)", async () => {
    const server = await start();
    expect(server.version).toBe("nats-server: v2.9.10");
    expect(server.syncAlways).toBe(false);
    expect(await readFile(join(storeDir, "nats-server.conf"), "utf8")).not.toContain(
      "sync_interval",
    );
    expect(await readFile(server.logFile, "utf8")).toContain("Server is ready");
  });

  it("passes it in a generated config file to a binary that reports 2.10.0", async () => {
    // A 2.9.10 behind a wrapper that claims 2.10.0: it reads the config it is given and
    // refuses the option by name, which shows that the option reached it.
    const wrapper = join(storeDir, "nats-server-2.10");
    await writeFile(
      wrapper,
      '#!/bin/sh\n[ "$1" = --version ] && { echo "nats-server: v2.10.0"; exit 0; }\nexec /usr/sbin/nats-server "$@"\n',
    );
    await chmod(wrapper, 0o755);

    await expect(startNatsServer({ storeDir, binary: wrapper })).rejects.toThrow(
      /exited \(code 1\) before it was ready[\s\S]*unknown field "sync_interval"/,
    );
    const config = await readFile(join(storeDir, "nats-server.conf"), "utf8");
    expect(config).toMatch(/jetstream \{\s*sync_interval: always\s*\}/);
  });
});
