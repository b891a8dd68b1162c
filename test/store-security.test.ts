/**
 * The store is the broker's alone: its embedded nats-server takes no connection without the
 * credentials generated at its start (which never appear on its command line), and its data
 * directory and files are not readable by other users. With NATS_URL, the broker presents the
 * credentials it is configured with.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RunningSessionbus, startSessionbus } from "../src/app.js";
import { readConfig } from "../src/config.js";
import { type NatsServerProcess, startNatsServer } from "../src/store/nats-server-process.js";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { SessionbusClient, uniqueName } from "./support/grpc-client.js";
import { TEST_ROOT_KEY } from "./support/test-credentials.js";

const EMBEDDED = /embedded nats-server at nats:\/\/127\.0\.0\.1:(\d+)/;

let dir: string;
const brokers: BrokerProcess[] = [];
const servers: NatsServerProcess[] = [];
const inProcess: RunningSessionbus[] = [];
const clients: SessionbusClient[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sessionbus-store-security-"));
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(inProcess.splice(0).map((running) => running.close()));
  await Promise.all(brokers.splice(0).map((broker) => broker.stop()));
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  await rm(dir, { recursive: true, force: true });
});

/** Every file and directory below `root`, itself included, with its permission bits. */
async function modes(root: string): Promise<Map<string, number>> {
  const found = new Map<string, number>([[root, (await stat(root)).mode & 0o777]]);
  for (const entry of await readdir(root, { recursive: true })) {
    const path = join(root, entry);
    found.set(path, (await stat(path)).mode & 0o777);
  }
  return found;
}

/** What a raw NATS connection attempt ends with: "connected" or the error's message. */
async function rawConnect(options: Parameters<typeof connect>[0]): Promise<string> {
  try {
    const nc = await connect({ ...options, reconnect: false });
    await nc.close();
    return "connected";
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

describe("the embedded nats-server of a broker", () => {
  it("refuses a connection without the broker's credentials, while the broker works", async () => {
    const dataDir = join(dir, "data");
    const broker = await startBrokerProcess({ dataDir });
    brokers.push(broker);
    const port = Number(EMBEDDED.exec(broker.output())?.[1]);
    expect(port, broker.output()).toBeGreaterThan(0);

    // The broker's own work goes through.
    const client = new SessionbusClient(broker.url);
    clients.push(client);
    const queue = uniqueName("private-store");
    await client.createQueue(queue);
    await client.send(queue, [{ body: Buffer.from("mine") }]);
    expect(await client.peekAll(queue)).toHaveLength(1);

    // A local process without the credentials can neither read nor purge nor publish.
    const servers = `nats://127.0.0.1:${port}`;
    expect(await rawConnect({ servers })).toMatch(/authorization violation/i);
    expect(await rawConnect({ servers, user: "sessionbus", pass: "guess" })).toMatch(
      /authorization violation/i,
    );
  });

  it("keeps its data directory, store files and config unreadable by other users", async () => {
    // A data directory made by an earlier version, world-readable, is tightened.
    const dataDir = join(dir, "data");
    await mkdir(join(dataDir, "jetstream"), { recursive: true, mode: 0o755 });
    await chmod(dataDir, 0o755);
    await chmod(join(dataDir, "jetstream"), 0o755);

    const broker = await startBrokerProcess({ dataDir });
    brokers.push(broker);
    const client = new SessionbusClient(broker.url);
    clients.push(client);
    const queue = uniqueName("private-files");
    await client.createQueue(queue);
    await client.send(queue, [{ body: Buffer.from("on disk") }]);

    const found = await modes(dataDir);
    const storeDir = join(dataDir, "jetstream");
    for (const file of ["nats-server.conf", "nats-server.log", "nats-server.pid"]) {
      expect(found.has(join(storeDir, file)), `${file} exists`).toBe(true);
    }
    // JetStream's own files (streams, KV buckets) are there too.
    expect([...found.keys()].some((path) => path.endsWith(".blk"))).toBe(true);
    const open = [...found].filter(([, mode]) => (mode & 0o077) !== 0);
    expect(open.map(([path, mode]) => `${path} ${mode.toString(8)}`)).toEqual([]);
  });

  it("gets its credentials from a config file, never on its command line", async () => {
    const dataDir = join(dir, "data");
    const broker = await startBrokerProcess({ dataDir });
    brokers.push(broker);
    const storeDir = join(dataDir, "jetstream");
    const pid = (await readFile(join(storeDir, "nats-server.pid"), "utf8")).trim();
    const config = await readFile(join(storeDir, "nats-server.conf"), "utf8");
    const password = /password: "([^"]+)"/.exec(config)?.[1];
    const user = /user: "([^"]+)"/.exec(config)?.[1];
    expect(password?.length).toBeGreaterThanOrEqual(43); // 32 random bytes, base64url

    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    expect(cmdline).toContain(join(storeDir, "nats-server.conf"));
    expect(cmdline.join(" ")).not.toContain(password);
    expect(cmdline.join(" ")).not.toContain(user);
  });

  it("gets fresh credentials at each start", async () => {
    const first = await startNatsServer({ storeDir: join(dir, "store") });
    servers.push(first);
    const previous = first.credentials;
    await servers.splice(0)[0]?.stop();
    const second = await startNatsServer({ storeDir: join(dir, "store") });
    servers.push(second);
    expect(second.credentials).toBeDefined();
    expect(second.credentials?.password).not.toBe(previous?.password);
    expect(
      await rawConnect({
        servers: second.url,
        user: previous?.user ?? "",
        pass: previous?.password ?? "",
      }),
    ).toMatch(/authorization violation/i);
  });
});

describe("NATS_URL with credentials", () => {
  async function protectedServer(): Promise<NatsServerProcess> {
    const server = await startNatsServer({ storeDir: join(dir, "external") });
    servers.push(server);
    return server;
  }

  it("connects with NATS_USER and NATS_PASSWORD and serves", async () => {
    const server = await protectedServer();
    const credentials = server.credentials;
    if (credentials === undefined) throw new Error("no credentials");
    const config = readConfig({
      SESSIONBUS_PORT: "0",
      SESSIONBUS_HTTP_PORT: "0",
      NATS_URL: server.url,
      NATS_USER: credentials.user,
      NATS_PASSWORD: credentials.password,
      SESSIONBUS_ROOT_KEY: TEST_ROOT_KEY,
    });
    const running = await startSessionbus(config);
    inProcess.push(running);
    const client = new SessionbusClient(running.url);
    clients.push(client);
    const queue = uniqueName("external-auth");
    await client.createQueue(queue);
    await client.send(queue, [{ body: Buffer.from("through credentials") }]);
    expect(await client.peekAll(queue)).toHaveLength(1);

    // The queue's stream is there, for those holding the credentials only.
    const nc = await connect({
      servers: server.url,
      user: credentials.user,
      pass: credentials.password,
    });
    try {
      const names: string[] = [];
      for await (const name of (await jetstreamManager(nc)).streams.names()) names.push(name);
      expect(names.length).toBeGreaterThan(0);
    } finally {
      await nc.close();
    }
  });

  it("fails to start with a message naming the settings when they are missing or wrong", async () => {
    const server = await protectedServer();
    const base = { SESSIONBUS_PORT: "0", SESSIONBUS_HTTP_PORT: "0", NATS_URL: server.url };
    await expect(startSessionbus(readConfig(base))).rejects.toThrow(
      /NATS server at nats:\/\/127\.0\.0\.1:\d+ refused the connection .*NATS_USER and NATS_PASSWORD/,
    );
    await expect(
      startSessionbus(readConfig({ ...base, NATS_USER: "someone", NATS_PASSWORD: "wrong" })),
    ).rejects.toThrow(/refused the connection/);
  });

  it("reads NATS_CREDS, NATS_TOKEN and NATS_TLS_* into the connection settings", () => {
    const config = readConfig({
      NATS_URL: "tls://nats.example:4222",
      NATS_CREDS: "/etc/sessionbus/broker.creds",
      NATS_TOKEN: "t0ken",
      NATS_TLS_CA: "/etc/sessionbus/ca.pem",
      NATS_TLS_CERT: "/etc/sessionbus/client.pem",
      NATS_TLS_KEY: "/etc/sessionbus/client-key.pem",
    });
    expect(config.natsAuth).toEqual({
      credsFile: "/etc/sessionbus/broker.creds",
      token: "t0ken",
      tlsCaFile: "/etc/sessionbus/ca.pem",
      tlsCertFile: "/etc/sessionbus/client.pem",
      tlsKeyFile: "/etc/sessionbus/client-key.pem",
    });
    expect(() => readConfig({ NATS_TLS_CERT: "/etc/sessionbus/client.pem" })).toThrow(
      /NATS_TLS_CERT and NATS_TLS_KEY must be set together/,
    );
  });
});
