/**
 * A nats-server cluster on this machine, for tests and for `npm run cluster`: every node runs
 * from the one config file in the repository, `cluster/nats-node.conf`, with its ports, name
 * and store directory passed through the environment (see that file).
 *
 * ```ts
 * const cluster = await startNatsCluster(); // 3 nodes, free ports, a temporary directory
 * const broker = await startSessionbus({ ...config, ...cluster.brokerConfig(3) });
 * const leader = await cluster.leaderOf("SB_0123456789ab"); // stream info's cluster.leader
 * await leader.kill(); // kill -9
 * await cluster.leaderOf("SB_0123456789ab", { not: leader }); // waits for the new election
 * await leader.start(); // same ports, same store; rejoins
 * await cluster.waitForCurrent("SB_0123456789ab"); // until every replica has caught up
 * await cluster.stop(); // every node, then the temporary directory
 * ```
 *
 * A broker process on it: `startBrokerProcess({ env: cluster.brokerEnv(3) })`.
 *
 * Each node's nats-server runs under the same small shell supervisor as the embedded server
 * (src/store/nats-server-supervisor.ts): if the test process dies, even by SIGKILL, its
 * nodes get SIGTERM and stop; nothing is left running. A node's output is appended to
 * `<node dir>/nats-server.log` across restarts, with one "Server is ready" line per start.
 *
 * Waiting is always bounded: what JetStream does asynchronously (elections, catching up) is
 * polled through a client connection every 100 ms until it holds or the bound passes, and
 * the error then says what was awaited.
 */
import { closeSync, fchmodSync, openSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import {
  type ClusterInfo,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { SessionbusConfig } from "../../src/config.js";
import { isSessionConsumerName } from "../../src/store/message-streams.js";
import { generateNatsCredentials, type NatsCredentials } from "../../src/store/nats-credentials.js";
import { resolveBinary } from "../../src/store/nats-server-process.js";
import {
  killSupervisedGroup,
  releaseServer,
  type SupervisedServer,
  spawnSupervised,
} from "../../src/store/nats-server-supervisor.js";
import { ensurePrivateDir } from "../../src/store/private-dir.js";
import type { ReplicaCount } from "../../src/store/replicas.js";

/** The config file every node runs from. */
export const NODE_CONFIG_FILE = fileURLToPath(
  new URL("../../cluster/nats-node.conf", import.meta.url),
);
/** The cluster name in that file. */
export const CLUSTER_NAME = "sessionbus";

const HOST = "127.0.0.1";
const READY_LINE = "Server is ready";
const POLL_MS = 100;
/** Generous: three servers electing leaders on a busy 2-core machine. */
const DEFAULT_TIMEOUT_MS = 60_000;
/** JetStream flushes on SIGTERM; SIGKILL only for a node that ignores it this long. */
const STOP_GRACE_MS = 30_000;
/** A JetStream request to the cluster gives up after this; polls then try again. */
const REQUEST_TIMEOUT_MS = 2_000;
/** The stream waitUntilReady makes (and deletes) to prove the cluster can place replicas. */
const READY_PROBE_STREAM = "CLUSTER_READY_PROBE";

export interface NatsClusterOptions {
  /** How many nodes (server names n1, n2, …). @default 3 */
  size?: number;
  /**
   * Directory with one sub-directory per node (`n1/`, …: JetStream store and log), kept by
   * stop(). Reusing one restarts the cluster on its stores.
   * @default a new temporary directory, removed by stop()
   */
  dir?: string;
  /** Client port of each node. @default free ports */
  ports?: readonly number[];
  /** Route (cluster) port of each node. @default free ports */
  routePorts?: readonly number[];
  /** HTTP monitoring port of each node (/varz, /jsz, /healthz). @default free ports */
  monitorPorts?: readonly number[];
  /** User and password of clients and routes alike. @default random (generateNatsCredentials) */
  credentials?: NatsCredentials;
  /** @default NATS_SERVER_BIN, else nats-server on PATH, else /usr/sbin/nats-server */
  binary?: string;
  /** Bound of the whole start, and of each node's start() later. @default 60_000 */
  startTimeoutMs?: number;
}

/** One nats-server of the cluster. */
export interface ClusterNode {
  /** Its server_name, "n1", "n2", …: what stream info's `cluster.leader` names. */
  readonly name: string;
  /** Client URL, nats://127.0.0.1:<port>. */
  readonly url: string;
  readonly port: number;
  readonly routePort: number;
  /** http://127.0.0.1:<monitor port> */
  readonly monitorUrl: string;
  /** Its directory: the JetStream store is `<dir>/jetstream`, the log `<dir>/nats-server.log`. */
  readonly dir: string;
  readonly logFile: string;
  /** Whether its nats-server process is running. */
  readonly running: boolean;
  /** The running nats-server's pid; undefined while it is down. */
  readonly pid: number | undefined;
  /** kill -9 of the nats-server (a crash); resolves once it has exited. No-op when down. */
  kill(): Promise<void>;
  /** SIGTERM (JetStream flushes), SIGKILL after 30 s; resolves once it has exited. */
  stop(): Promise<void>;
  /**
   * Starts the node again, on its ports and store, after kill() or stop(); resolves once it
   * logs that it is ready. It rejoins the cluster by itself; `cluster.waitForCurrent(stream)`
   * waits until it has caught up on a stream. Rejects when it is running.
   */
  start(): Promise<void>;
}

export interface NatsCluster {
  readonly nodes: readonly ClusterNode[];
  /** Every node's client URL, comma-separated: NATS_URL for a broker. */
  readonly url: string;
  /** What clients (and the nodes among themselves) present. */
  readonly credentials: NatsCredentials;
  /** The directory holding the nodes' directories. */
  readonly dir: string;
  /** The node named `name` ("n1", …); throws for an unknown name. */
  node(name: string): ClusterNode;
  /**
   * Environment of a broker process on this cluster: NATS_URL, NATS_USER, NATS_PASSWORD and
   * SESSIONBUS_REPLICAS.
   * @param replicas @default the cluster's size when it is 3 or 5, else 1
   */
  brokerEnv(replicas?: ReplicaCount): Record<string, string>;
  /** The same as fields of an in-process broker's SessionbusConfig. */
  brokerConfig(
    replicas?: ReplicaCount,
  ): Required<Pick<SessionbusConfig, "natsUrl" | "natsAuth" | "replicas">>;
  /**
   * A JetStream manager on the cluster's inspection connection (opened on first use, to
   * every node, reconnecting to whichever is up; closed by stop()). Its requests time out
   * after 2 s.
   */
  jsm(): Promise<JetStreamManager>;
  /**
   * The node that leads `stream` (stream info's `cluster.leader`), waiting while the stream
   * has no leader, or only the one named by `not` (the node just killed: it may still be
   * reported until the others notice).
   */
  leaderOf(
    stream: string,
    options?: { not?: ClusterNode; timeoutMs?: number },
  ): Promise<ClusterNode>;
  /** The nodes that hold a replica of `stream` and do not lead it. */
  followersOf(stream: string, options?: { timeoutMs?: number }): Promise<ClusterNode[]>;
  /**
   * Waits until the stream has a leader and every replica reports itself current (none
   * offline or behind): after a node's restart, until it has caught up.
   */
  waitForCurrent(stream: string, options?: { timeoutMs?: number }): Promise<void>;
  /**
   * waitForCurrent for every stream of the cluster and every durable consumer of each (each
   * is a raft group of its own: a node current on one stream may still be catching up on
   * another, such as a KV bucket). What an upgrade one node at a time waits for before the
   * next node (docs/operations.md). Resolves with the number of groups looked at.
   */
  waitForAllCurrent(options?: { timeoutMs?: number }): Promise<number>;
  /**
   * Waits until JetStream has a meta leader and can place a stream on every running node:
   * start() does this for all nodes; call it after restarting nodes, before creating streams.
   */
  waitUntilReady(options?: { timeoutMs?: number }): Promise<void>;
  /** Stops every node (SIGTERM, in parallel); removes the directory if it made it. */
  stop(): Promise<void>;
}

/** Starts the nodes, and resolves once the cluster can place a stream with a replica on each. */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const madeDir = options.dir === undefined;
  const dir = resolve(options.dir ?? (await mkdtemp(join(tmpdir(), "sessionbus-cluster-"))));
  const credentials = options.credentials ?? generateNatsCredentials();
  const binary = resolveBinary(options.binary ?? (process.env.NATS_SERVER_BIN || "nats-server"));
  const needed = [options.ports, options.routePorts, options.monitorPorts].filter(
    (given) => given === undefined,
  ).length;
  const free = await freePorts(needed * size);
  const pick = (given: readonly number[] | undefined, what: string): readonly number[] => {
    if (given === undefined) return free.splice(0, size);
    if (given.length !== size) throw new Error(`${what}: ${given.length} ports for ${size} nodes`);
    return given;
  };
  const ports = pick(options.ports, "ports");
  const routePorts = pick(options.routePorts, "routePorts");
  const monitorPorts = pick(options.monitorPorts, "monitorPorts");
  const routes = routePorts.map(
    (port) => `nats-route://${credentials.user}:${credentials.password}@${HOST}:${port}`,
  );

  const nodes: Node[] = [];
  for (let index = 0; index < size; index++) {
    const name = `n${index + 1}`;
    const nodeDir = join(dir, name);
    await ensurePrivateDir(nodeDir);
    nodes.push(
      new Node({
        name,
        binary,
        dir: nodeDir,
        port: ports[index] as number,
        routePort: routePorts[index] as number,
        monitorPort: monitorPorts[index] as number,
        // Values are parsed as config text: strings are quoted, so a password such as "8k"
        // stays a string and a path keeps its slashes.
        env: {
          ...process.env,
          NATS_NODE_NAME: name,
          NATS_NODE_PORT: String(ports[index]),
          NATS_NODE_ROUTE_PORT: String(routePorts[index]),
          NATS_NODE_MONITOR_PORT: String(monitorPorts[index]),
          NATS_NODE_STORE_DIR: JSON.stringify(nodeDir),
          NATS_CLUSTER_ROUTES: JSON.stringify(routes),
          NATS_CLUSTER_USER: JSON.stringify(credentials.user),
          NATS_CLUSTER_PASSWORD: JSON.stringify(credentials.password),
        },
        startTimeoutMs: timeoutMs,
      }),
    );
  }

  let inspection: Promise<NatsConnection> | undefined;
  const inspectionConnection = (): Promise<NatsConnection> => {
    inspection ??= connect({
      servers: nodes.map((node) => node.url),
      user: credentials.user,
      pass: credentials.password,
      name: "nats-cluster inspection",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    return inspection;
  };
  const cluster: NatsCluster = {
    nodes,
    url: nodes.map((node) => node.url).join(","),
    credentials,
    dir,
    node(name) {
      const found = nodes.find((node) => node.name === name);
      if (found === undefined) throw new Error(`no node "${name}" in the cluster`);
      return found;
    },
    brokerEnv(replicas) {
      const config = cluster.brokerConfig(replicas);
      return {
        NATS_URL: config.natsUrl as string,
        NATS_USER: credentials.user,
        NATS_PASSWORD: credentials.password,
        SESSIONBUS_REPLICAS: String(config.replicas),
      };
    },
    brokerConfig(replicas) {
      return {
        natsUrl: cluster.url,
        natsAuth: { user: credentials.user, password: credentials.password },
        replicas: replicas ?? (size === 3 || size === 5 ? size : 1),
      };
    },
    async jsm() {
      // No API check: before the meta leader is elected, JetStream does not answer yet.
      return jetstreamManager(await inspectionConnection(), {
        timeout: REQUEST_TIMEOUT_MS,
        checkAPI: false,
      });
    },
    async leaderOf(stream, options = {}) {
      const jsm = await cluster.jsm();
      const name = await pollUntil(
        `a leader of stream ${stream}${options.not ? ` other than ${options.not.name}` : ""}`,
        options.timeoutMs,
        async () => {
          const leader = (await jsm.streams.info(stream)).cluster?.leader;
          return leader === undefined || leader === options.not?.name ? undefined : leader;
        },
      );
      return cluster.node(name);
    },
    async followersOf(stream, options = {}) {
      const jsm = await cluster.jsm();
      const names = await pollUntil(`a leader of stream ${stream}`, options.timeoutMs, async () => {
        const info = (await jsm.streams.info(stream)).cluster;
        if (info?.leader === undefined) return undefined;
        return (info.replicas ?? []).map((replica) => replica.name);
      });
      return names.map((name) => cluster.node(name));
    },
    async waitForCurrent(stream, options = {}) {
      const jsm = await cluster.jsm();
      await pollUntil(`every replica of stream ${stream} current`, options.timeoutMs, async () => {
        const info = (await jsm.streams.info(stream)).cluster;
        if (info?.leader === undefined) return undefined;
        const behind = (info.replicas ?? []).some((replica) => replica.offline || !replica.current);
        return behind ? undefined : true;
      });
    },
    async waitForAllCurrent(options = {}) {
      const jsm = await cluster.jsm();
      const caughtUp = (info: ClusterInfo | undefined) =>
        info?.leader !== undefined &&
        (info.replicas ?? []).every((replica) => !replica.offline && replica.current);
      let behind = "";
      return pollUntil(
        "every replica of every stream and file-backed durable consumer current",
        options.timeoutMs,
        async () => {
          let groups = 0;
          for await (const stream of jsm.streams.list()) {
            if ((stream.config.num_replicas ?? 1) < 2) continue;
            behind = `stream ${stream.config.name}${replicaStates(stream.cluster)}`;
            if (!caughtUp(stream.cluster)) return undefined;
            groups++;
            // Names, not a consumer list: the list asks every consumer's leader, and one
            // session consumer left without a quorum (each of its in-memory replicas lost to
            // a restart; it goes at the session's next accept) made every list time out.
            for (const name of await consumerNames(
              await inspectionConnection(),
              stream.config.name,
            )) {
              // Session consumers live in memory and come and go with every accept: a new
              // one is not current until its first election, which under load is always.
              if (isSessionConsumerName(name)) continue;
              const consumer = await jsm.consumers
                .info(stream.config.name, name)
                .catch((error: unknown) => {
                  if (error instanceof JetStreamApiError && error.code === 404) return undefined;
                  throw error;
                });
              if (consumer === undefined) continue; // an ephemeral one (a KV watch) gone since
              if (consumer.config.durable_name === undefined || consumer.config.mem_storage) {
                continue;
              }
              behind = `consumer ${consumer.name} of ${stream.config.name}${replicaStates(consumer.cluster)}`;
              if (!caughtUp(consumer.cluster)) return undefined;
              groups++;
            }
          }
          return groups;
        },
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}; last behind: ${behind}`);
      });
    },
    async waitUntilReady(options = {}) {
      const jsm = await cluster.jsm();
      const replicas = nodes.filter((node) => node.running).length;
      await pollUntil(
        `JetStream to place a stream on all ${replicas} running nodes`,
        options.timeoutMs ?? timeoutMs,
        async () => {
          // Left by an attempt whose answer timed out, perhaps with another replica count.
          await jsm.streams.delete(READY_PROBE_STREAM).catch(() => undefined);
          await jsm.streams.add({
            name: READY_PROBE_STREAM,
            subjects: ["cluster-ready-probe"],
            storage: StorageType.Memory,
            num_replicas: replicas,
          });
          await jsm.streams.delete(READY_PROBE_STREAM);
          return true;
        },
      );
    },
    async stop() {
      const connection = inspection;
      inspection = undefined;
      await connection?.then((nc) => nc.close()).catch(() => undefined);
      await Promise.all(nodes.map((node) => node.stop()));
      if (madeDir) await rm(dir, { recursive: true, force: true });
    },
  };

  try {
    await Promise.all(nodes.map((node) => node.start()));
    await cluster.waitUntilReady();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

interface NodeSettings {
  name: string;
  binary: string;
  dir: string;
  port: number;
  routePort: number;
  monitorPort: number;
  env: NodeJS.ProcessEnv;
  startTimeoutMs: number;
}

class Node implements ClusterNode {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly routePort: number;
  readonly monitorUrl: string;
  readonly dir: string;
  readonly logFile: string;
  private process: { supervised: SupervisedServer; pid: number; exited: Promise<void> } | undefined;

  constructor(private readonly settings: NodeSettings) {
    this.name = settings.name;
    this.port = settings.port;
    this.routePort = settings.routePort;
    this.url = `nats://${HOST}:${settings.port}`;
    this.monitorUrl = `http://${HOST}:${settings.monitorPort}`;
    this.dir = settings.dir;
    this.logFile = join(settings.dir, "nats-server.log");
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  async start(): Promise<void> {
    if (this.process !== undefined) throw new Error(`node ${this.name} is running`);
    // Only lines after this offset belong to this start.
    const offset = await stat(this.logFile).then(
      (found) => found.size,
      () => 0,
    );
    const logFd = openSync(this.logFile, "a", 0o600);
    let supervised: SupervisedServer;
    try {
      fchmodSync(logFd, 0o600);
      supervised = spawnSupervised(
        this.settings.binary,
        ["-c", NODE_CONFIG_FILE],
        logFd,
        this.settings.env,
      );
    } finally {
      closeSync(logFd);
    }
    const { shell } = supervised;
    const exited = new Promise<void>((resolve) => {
      shell.once("close", () => resolve());
      shell.once("error", () => {
        if (shell.pid === undefined) resolve();
      });
    });
    let up = true;
    void exited.then(() => {
      up = false;
      if (this.process?.supervised === supervised) this.process = undefined;
    });
    const deadline = Date.now() + this.settings.startTimeoutMs;
    try {
      const pid = await supervised.serverPid;
      this.process = { supervised, pid, exited };
      for (;;) {
        const log = await readFile(this.logFile, "utf8").catch(() => "");
        if (log.slice(offset).includes(READY_LINE)) return;
        if (!up) throw new Error(`nats-server ${this.name} exited while starting`);
        if (Date.now() > deadline) {
          throw new Error(
            `nats-server ${this.name} was not ready within ${this.settings.startTimeoutMs} ms`,
          );
        }
        await delay(POLL_MS / 10);
      }
    } catch (error) {
      killSupervisedGroup(shell);
      await exited;
      const log = await readFile(this.logFile, "utf8").catch(() => "");
      const tail = log.slice(offset).trim().split("\n").slice(-20).join("\n");
      throw new Error(`${(error as Error).message}. Its output:\n${tail || "(none)"}`, {
        cause: error,
      });
    }
  }

  async kill(): Promise<void> {
    const running = this.process;
    if (running === undefined) return;
    const { shell } = running.supervised;
    // The shell waits for the server, so while the shell runs, the pid is still the server's.
    if (shell.exitCode === null && shell.signalCode === null) {
      try {
        process.kill(running.pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    await running.exited;
  }

  async stop(): Promise<void> {
    const running = this.process;
    if (running === undefined) return;
    const { shell } = running.supervised;
    releaseServer(shell);
    const escalate = setTimeout(() => killSupervisedGroup(shell), STOP_GRACE_MS);
    try {
      await running.exited;
    } finally {
      clearTimeout(escalate);
    }
  }
}

/**
 * Calls `probe` every 100 ms until it returns a value other than undefined, and resolves with
 * it. A probe that throws counts as "not yet" (a node down, a request timing out); the last
 * error goes into the message when `timeoutMs` passes.
 */
async function pollUntil<T>(
  what: string,
  timeoutMs: number | undefined,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const bound = timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + bound;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const why =
        lastError === undefined
          ? ""
          : ` (last error: ${lastError instanceof JetStreamApiError ? `${lastError.code} ` : ""}${String((lastError as Error).message ?? lastError)})`;
      throw new Error(`gave up waiting for ${what} after ${bound} ms${why}`);
    }
    await delay(POLL_MS);
  }
}

/** The names of `stream`'s consumers, from the cluster's metadata (no consumer is asked). */
async function consumerNames(nc: NatsConnection, stream: string): Promise<string[]> {
  const names: string[] = [];
  for (;;) {
    const reply = await nc.request(
      `$JS.API.CONSUMER.NAMES.${stream}`,
      JSON.stringify({ offset: names.length }),
      { timeout: REQUEST_TIMEOUT_MS },
    );
    const page = reply.json<{
      consumers?: string[] | null;
      total?: number;
      error?: { code: number; err_code?: number; description: string };
    }>();
    if (page.error) {
      throw new JetStreamApiError({
        code: page.error.code,
        err_code: page.error.err_code ?? 0,
        description: page.error.description,
      });
    }
    const consumers = page.consumers ?? [];
    names.push(...consumers);
    if (consumers.length === 0 || names.length >= (page.total ?? 0)) return names;
  }
}

/** A raft group's leader and replicas as a stream or consumer info tells them, for an error. */
function replicaStates(info: ClusterInfo | undefined): string {
  if (info === undefined) return " (no cluster info)";
  const replicas = (info.replicas ?? []).map(
    (replica) =>
      `${replica.name} ${replica.offline ? "offline" : replica.current ? "current" : "behind"}, lag ${replica.lag ?? 0}, seen ${Math.round(replica.active / 1e6)} ms ago`,
  );
  return ` (leader ${info.leader ?? "none"}; ${replicas.join("; ")})`;
}

/** `count` distinct free ports: all listened on at once, then released together. */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, HOST, resolve);
      });
    }
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("no port assigned");
      return address.port;
    });
  } finally {
    await Promise.all(
      servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  }
}
