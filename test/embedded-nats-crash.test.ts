/**
 * A broker on its embedded nats-server (no NATS_URL), killed with SIGKILL: its nats-server
 * must stop cleanly by itself, and nothing settled before the kill may come back.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type BrokerProcess, startBrokerProcess } from "./support/broker-process.js";
import { bodyText, SessionbusClient, uniqueName, within } from "./support/grpc-client.js";

const EXIT_BOUND_MS = 30_000;
const MESSAGES = 200;

let dataDir: string;
const brokers: BrokerProcess[] = [];
const clients: SessionbusClient[] = [];
/** nats-server pids seen by a test; any still alive at the end are stopped. */
const serverPids = new Set<number>();

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "sessionbus-embedded-crash-"));
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(brokers.splice(0).map((broker) => broker.stop()));
  for (const pid of serverPids) {
    // Only the server of this test's data directory: pids are reused.
    if (isAlive(pid) && (await commandLine(pid)).includes(dataDir)) process.kill(pid, "SIGKILL");
  }
  serverPids.clear();
  await rm(dataDir, { recursive: true, force: true });
});

async function startBroker(): Promise<{ broker: BrokerProcess; client: SessionbusClient }> {
  const broker = await startBrokerProcess({ dataDir });
  brokers.push(broker);
  serverPids.add(await serverPid());
  const client = new SessionbusClient(broker.url);
  clients.push(client);
  return { broker, client };
}

/** The embedded nats-server's pid, from the pid file it writes into the store directory. */
async function serverPid(): Promise<number> {
  const pid = Number(
    (await readFile(join(dataDir, "jetstream", "nats-server.pid"), "utf8")).trim(),
  );
  expect(Number.isInteger(pid) && pid > 0, `pid file holds "${pid}"`).toBe(true);
  return pid;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once `pid` is gone; no event tells when a process that is not our child exits. */
async function exitOf(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      throw new Error(`nats-server ${pid} was still running ${timeoutMs} ms after the kill`);
    }
    await delay(50); // a polling interval of a bounded wait
  }
}

async function killBroker(broker: BrokerProcess): Promise<void> {
  broker.kill("SIGKILL");
  const exit = await within(broker.exited, EXIT_BOUND_MS, "the killed broker to exit");
  expect(exit.signal).toBe("SIGKILL");
}

describe("kill -9 of a broker on its embedded nats-server", () => {
  it("the nats-server stops by itself, cleanly (its log ends with Server Exiting)", async () => {
    const { broker, client } = await startBroker();
    const pid = await serverPid();
    const queue = uniqueName("embedded-kill");
    await client.createQueue(queue);
    await client.send(queue, [{ body: Buffer.from("kept") }]);

    await killBroker(broker);
    await exitOf(pid, EXIT_BOUND_MS);

    const log = await readFile(join(dataDir, "jetstream", "nats-server.log"), "utf8");
    // A server whose output was a pipe to the dead broker died of SIGPIPE silently, at its
    // first shutdown line, so it never logged the last one.
    expect(log).toContain("Initiating JetStream Shutdown...");
    expect(log).toContain("Server Exiting..");

    // The next start finds the store as it was.
    const second = await startBroker();
    expect(await second.client.peekAll(queue)).toHaveLength(1);
  });

  it("messages completed or dead-lettered just before the kill do not come back", async () => {
    const { broker, client } = await startBroker();
    const queue = uniqueName("embedded-settled");
    await client.createQueue(queue);
    await client.send(
      queue,
      Array.from({ length: MESSAGES }, (_, i) => ({ body: Buffer.from(`m${i}`) })),
    );
    const stream = client.receiveStream({ entityPath: queue, prefetch: MESSAGES });
    const received = await stream.take(MESSAGES);
    stream.cancel();
    const [deadLettered, ...completed] = received;
    if (deadLettered === undefined) throw new Error("nothing received");
    await Promise.all(completed.map((message) => client.complete(queue, message.lockToken)));
    await client.settle({
      entityPath: queue,
      lockTokens: [deadLettered.lockToken],
      disposition: "DISPOSITION_DEAD_LETTER",
      deadLetterReason: "test",
    });

    // Every settlement above was answered OK; the broker dies right after the last one.
    await killBroker(broker);

    const second = await startBroker();
    expect(await second.client.peekAll(queue)).toEqual([]);
    const dlq = await second.client.peekAll(`${queue}/$deadletterqueue`);
    expect(dlq.map(bodyText)).toEqual([bodyText(deadLettered)]);
  });
});

async function commandLine(pid: number): Promise<string> {
  return readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
}
