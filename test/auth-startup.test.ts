/**
 * Auth is on from the first start: a broker on a new store makes the
 * RootManageSharedAccessKey rule, writes its connection string to a file only its user can
 * read and says where; SESSIONBUS_ROOT_KEY sets the key instead. Turning auth off is allowed
 * on loopback only, unless the operator insists.
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { failure, SessionbusClient } from "./support/grpc-client.js";
import { mintToken, ROOT_RULE } from "./support/test-credentials.js";

let dir: string;
const brokers: BrokerProcess[] = [];
const clients: SessionbusClient[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sessionbus-auth-startup-"));
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(brokers.splice(0).map((broker) => broker.stop()));
  await rm(dir, { recursive: true, force: true });
});

async function start(env: Record<string, string>, dataDir = join(dir, "data")) {
  const broker = await startBrokerProcess({ dataDir, env });
  brokers.push(broker);
  return broker;
}

function client(broker: BrokerProcess, token: string | null): SessionbusClient {
  const made = new SessionbusClient(broker.url, { token });
  clients.push(made);
  return made;
}

/** The key of a connection string (Endpoint=…;SharedAccessKeyName=…;SharedAccessKey=…). */
function fieldOf(connectionString: string, name: string): string | undefined {
  return connectionString
    .trim()
    .split(";")
    .map((part) => part.split(/=(.*)/s))
    .find(([key]) => key === name)?.[1];
}

describe("the first start with auth on", () => {
  it("writes the root rule's connection string to a private file, says where, and keeps it", async () => {
    const dataDir = join(dir, "data");
    const broker = await start({ SESSIONBUS_ROOT_KEY: "" }, dataDir);
    const file = join(dataDir, "connection-string");
    expect(broker.output()).toContain(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const written = await readFile(file, "utf8");
    expect(fieldOf(written, "Endpoint")).toBe(`sb://${new URL(broker.url).host}/`);
    expect(fieldOf(written, "SharedAccessKeyName")).toBe(ROOT_RULE);
    expect(fieldOf(written, "UseDevelopmentEmulator")).toBe("true");
    const key = fieldOf(written, "SharedAccessKey") ?? "";

    // Its key works; without a token nothing does.
    const root = client(broker, mintToken({ key }));
    await expect(root.unary("AdminService", "ListQueues", {})).resolves.toBeDefined();
    const anonymous = await failure(client(broker, null).unary("AdminService", "ListQueues", {}));
    expect([anonymous.codeName, anonymous.reason]).toEqual(["UNAUTHENTICATED", "TOKEN_MISSING"]);

    // A restart on the same store keeps the rule and the file.
    await brokers.splice(0)[0]?.stop();
    const again = await start({ SESSIONBUS_ROOT_KEY: "" }, dataDir);
    expect(await readFile(file, "utf8")).toBe(written);
    expect(again.output()).toContain(file);
    const rootAgain = client(again, mintToken({ key }));
    await expect(rootAgain.unary("AdminService", "ListQueues", {})).resolves.toBeDefined();
  });

  it("uses SESSIONBUS_ROOT_KEY for the root rule instead, and writes no file", async () => {
    const dataDir = join(dir, "data");
    const key = Buffer.from("a root key chosen by the operator!").toString("base64");
    const broker = await start({ SESSIONBUS_ROOT_KEY: key }, dataDir);
    expect(broker.output()).toContain("SESSIONBUS_ROOT_KEY");
    await expect(stat(join(dataDir, "connection-string"))).rejects.toThrow(/ENOENT/);
    const root = client(broker, mintToken({ key }));
    await expect(root.unary("AdminService", "ListQueues", {})).resolves.toBeDefined();
  });

  it("refuses a SESSIONBUS_ROOT_KEY that is too short to be a key", async () => {
    await expect(start({ SESSIONBUS_ROOT_KEY: "secret" })).rejects.toThrow(
      /SESSIONBUS_ROOT_KEY must be 32 to 256 characters/,
    );
  });
});

describe("SESSIONBUS_AUTH=off", () => {
  it("serves every call without a token on loopback, and says so", async () => {
    const broker = await start({ SESSIONBUS_AUTH: "off" });
    expect(broker.output()).toMatch(/authorization OFF/);
    const anonymous = client(broker, null);
    await expect(anonymous.unary("AdminService", "ListQueues", {})).resolves.toBeDefined();
  });

  it("refuses to listen on a non-loopback address, unless SESSIONBUS_ALLOW_INSECURE=true", async () => {
    await expect(start({ SESSIONBUS_AUTH: "off", SESSIONBUS_HOST: "0.0.0.0" })).rejects.toThrow(
      /refusing to listen there[\s\S]*SESSIONBUS_ALLOW_INSECURE=true/,
    );
    const broker = await start({
      SESSIONBUS_AUTH: "off",
      SESSIONBUS_HOST: "0.0.0.0",
      SESSIONBUS_ALLOW_INSECURE: "true",
    });
    expect(broker.output()).toMatch(/authorization OFF/);
  });
});
