/**
 * `npm run cluster [-- --brokers N] [-- --dir DIR]`: a replicated sessionbus on this machine
 * for development. Starts three nats-servers as one JetStream cluster (the config file
 * cluster/nats-node.conf, as the tests use it) and N brokers (default 1) on it with
 * SESSIONBUS_REPLICAS=3 and authorization on, prints where everything is, and stops all of it
 * on Ctrl-C or SIGTERM: the brokers first (they drain), then the nats-servers (they flush).
 *
 * Everything listens on 127.0.0.1:
 *   nats-servers  n1, n2, n3: clients 4222–4224, routes 6222–6224, monitoring 8222–8224
 *   brokers       broker-1: gRPC 50051, Connect 50052; broker-2: 50053, 50054; …
 * State is kept in DIR (default data/cluster): n1/ n2/ n3/ (JetStream stores and logs),
 * broker-N/connection-string, and, mode 0600, the NATS user and password in nats.env and the
 * root rule's key in root-key (SESSIONBUS_ROOT_KEY overrides it). Running it again restarts
 * everything on the same stores.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { generateKey } from "../src/auth/authorization-rule-admin.js";
import { formatConnectionString } from "../src/client/connection-string.js";
import { generateNatsCredentials, type NatsCredentials } from "../src/store/nats-credentials.js";
import { ensurePrivateDir } from "../src/store/private-dir.js";
import { type NatsCluster, startNatsCluster } from "../test/support/nats-cluster.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const HOST = "127.0.0.1";
const NODES = 3;
const BROKER_START_MS = 120_000;
const BROKER_STOP_MS = 15_000;
const LISTENING = /sessionbus listening on (\S+)/;

interface Broker {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      brokers: { type: "string", default: "1" },
      dir: { type: "string", default: "data/cluster" },
    },
  });
  const brokerCount = Number(values.brokers);
  if (!Number.isInteger(brokerCount) || brokerCount < 0 || brokerCount > 20) {
    throw new Error(`--brokers must be a whole number from 0 to 20, not "${values.brokers}"`);
  }
  const dir = resolve(projectRoot, values.dir);
  await ensurePrivateDir(dir);

  const brokers: Broker[] = [];
  let cluster: NatsCluster | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (why: string) => {
    stopping ??= (async () => {
      console.log(`cluster: ${why}: stopping the brokers, then the nats-servers`);
      await Promise.all(brokers.map(stopBroker));
      await cluster?.stop();
      console.log("cluster: stopped");
    })();
    return stopping;
  };
  // Ctrl-C reaches the brokers too (same process group) and they stop on it by themselves;
  // the nats-servers run in groups of their own and wait for the brokers to drain.
  process.on("SIGINT", () => void stop("SIGINT").then(() => process.exit(0)));
  process.on("SIGTERM", () => void stop("SIGTERM").then(() => process.exit(0)));
  // Whatever happens to this script, no broker outlives it (the nats-servers see to themselves).
  process.on("exit", () => {
    for (const broker of brokers) if (isRunning(broker.child)) broker.child.kill("SIGKILL");
  });

  const credentials = await keptCredentials(dir);
  cluster = await startNatsCluster({
    size: NODES,
    dir,
    credentials,
    ports: ports(4222),
    routePorts: ports(6222),
    monitorPorts: ports(8222),
  });
  const shown = (path: string) => {
    const near = relative(process.cwd(), path);
    return near.startsWith("..") ? path : near;
  };
  console.log(`cluster: nats-servers up, cluster "sessionbus": ${cluster.url}`);
  for (const node of cluster.nodes) {
    console.log(
      `  ${node.name}: ${node.url}, monitoring ${node.monitorUrl}, log ${shown(node.logFile)}`,
    );
  }
  const env = cluster.brokerEnv(3);
  await writePrivate(
    join(dir, "nats.env"),
    `${Object.entries(env)
      .map(([name, value]) => `${name}=${value}`)
      .join("\n")}\n`,
  );
  console.log(
    `  a broker of your own joins with: set -a; . ${shown(join(dir, "nats.env"))}; set +a; npm start`,
  );

  const rootKey = process.env.SESSIONBUS_ROOT_KEY || (await keptRootKey(dir));
  for (let index = 1; index <= brokerCount && stopping === undefined; index++) {
    const port = 50049 + 2 * index;
    const brokerDir = join(dir, `broker-${index}`);
    await ensurePrivateDir(brokerDir);
    const broker = await startBroker(`broker-${index}`, {
      ...process.env,
      ...env,
      SESSIONBUS_HOST: HOST,
      SESSIONBUS_PORT: String(port),
      SESSIONBUS_HTTP_PORT: String(port + 1),
      SESSIONBUS_DATA_DIR: brokerDir,
      SESSIONBUS_ROOT_KEY: rootKey,
    });
    brokers.push(broker);
    void broker.exited.then(() => {
      if (stopping === undefined) console.log(`cluster: ${broker.name} exited; the rest goes on`);
    });
    const connectionString = join(brokerDir, "connection-string");
    await writePrivate(
      connectionString,
      `${formatConnectionString({ host: HOST, port, keyName: "RootManageSharedAccessKey", key: rootKey, tls: false })}\n`,
    );
    console.log(
      `cluster: ${broker.name} on ${HOST}:${port} (gRPC), ${HOST}:${port + 1} (Connect); export SESSIONBUS_CONNECTION_STRING="$(cat ${shown(connectionString)})"`,
    );
  }
  if (stopping === undefined) console.log("cluster: running; Ctrl-C stops everything");
}

function ports(first: number): number[] {
  return Array.from({ length: NODES }, (_, index) => first + index);
}

/** The NATS user and password of an earlier run on this directory, or new ones. */
async function keptCredentials(dir: string): Promise<NatsCredentials> {
  const text = await readFile(join(dir, "nats.env"), "utf8").catch(() => "");
  const user = /^NATS_USER=(.+)$/m.exec(text)?.[1];
  const password = /^NATS_PASSWORD=(.+)$/m.exec(text)?.[1];
  return user && password ? { user, password } : generateNatsCredentials();
}

/** The root rule's key of an earlier run on this directory, or a new one (kept for the next). */
async function keptRootKey(dir: string): Promise<string> {
  const file = join(dir, "root-key");
  const kept = (await readFile(file, "utf8").catch(() => "")).trim();
  if (kept !== "") return kept;
  const key = generateKey();
  await writePrivate(file, `${key}\n`);
  return key;
}

async function writePrivate(file: string, text: string): Promise<void> {
  await writeFile(file, text, { mode: 0o600 });
}

/** Starts src/main.ts as `npm start` does; resolves once it prints its listening line. */
async function startBroker(name: string, env: NodeJS.ProcessEnv): Promise<Broker> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: projectRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${name} did not start within ${BROKER_START_MS / 1000} s`));
    }, BROKER_START_MS);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        console.log(`[${name}] ${line}`);
        if (LISTENING.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited while starting (its output is above)`));
    });
  });
  try {
    await listening;
  } catch (error) {
    if (isRunning(child)) child.kill("SIGKILL");
    throw error;
  }
  return { name, child, exited };
}

async function stopBroker(broker: Broker): Promise<void> {
  if (isRunning(broker.child)) broker.child.kill("SIGTERM");
  const escalate = setTimeout(() => {
    if (isRunning(broker.child)) broker.child.kill("SIGKILL");
  }, BROKER_STOP_MS);
  await broker.exited;
  clearTimeout(escalate);
}

/** Our own child, not yet exited: its pid is still its own to signal. */
function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

main().catch((error: unknown) => {
  console.error(`cluster: ${error instanceof Error ? error.message : String(error)}`);
  // The nats-servers stop when this process ends (their supervisors see its pipe close).
  process.exit(1);
});
