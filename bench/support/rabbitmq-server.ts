/**
 * The RabbitMQ peer of `--peers`: a RabbitMQ node of the bench's own, started from Debian's
 * rabbitmq-server package (installed by scripts/rabbitmq-peer.sh when missing). Everything
 * it uses is its own: its own epmd on a free port, a node name, AMQP and distribution ports
 * on 127.0.0.1, data, logs, cookie and config in a temporary directory (no file of /etc or
 * /var/lib/rabbitmq is read), and the consistent-hash exchange plugin enabled in that
 * directory. A system RabbitMQ service, if there is one, is neither used nor touched.
 * `stop()` ends every process it started and removes the directory; so does the exit of
 * the bench, however it exits.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect as connectTcp } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { connect } from "amqplib";
import { freePort, projectRoot } from "./processes.js";
import { sleep } from "./scenario.js";

const HOST = "127.0.0.1";
const SERVER_SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/** apt may have to fetch the package first. */
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const START_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 30_000;
const POLL_MS = 250;
const TAIL_LINES = 100;

export interface RabbitMqServer {
  /** amqp:// URL of the node (user guest, which RabbitMQ admits from loopback). */
  url: string;
  /** The Erlang VM (beam.smp) of the node: the process whose CPU time is the server's. */
  beamPid: number;
  /** As the node announces itself, e.g. "RabbitMQ 3.10.8 on Erlang/OTP 25.2.3". */
  version: string;
  /** Seconds from spawning the node to its first accepted AMQP connection. */
  startSeconds: number;
  /** Stops the node and its epmd (SIGTERM, SIGKILL after 30 s), removes its directory. */
  stop(): Promise<void>;
}

/** Installs the package if missing (scripts/rabbitmq-peer.sh); resolves with its version. */
async function install(): Promise<string> {
  const { stdout } = await promisify(execFile)(
    "bash",
    [join(projectRoot, "scripts/rabbitmq-peer.sh")],
    { timeout: INSTALL_TIMEOUT_MS },
  );
  return stdout.trim();
}

export async function startRabbitMqServer(log: (line: string) => void): Promise<RabbitMqServer> {
  const packageVersion = await install();
  const dir = await mkdtemp(join(tmpdir(), "sessionbus-rabbitmq-"));
  const [amqpPort, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  const nodeName = `sessionbus-bench-${process.pid}@localhost`;
  const tail: string[] = [];
  const keep = (child: ChildProcess) => {
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on("line", (line) => {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
      });
    }
  };
  const started: ChildProcess[] = [];
  let beamPid: number | undefined;
  /** The VM, should it outlive its script: only while its command line names this node. */
  const killBeam = () => {
    if (beamPid === undefined) return;
    try {
      if (readFileSync(`/proc/${beamPid}/cmdline`, "utf8").includes(nodeName)) {
        killQuietly(beamPid);
      }
    } catch {
      // Gone.
    }
  };
  // On any exit of the bench: the node's whole process group, the VM itself, epmd.
  const killAll = () => {
    for (const child of started) {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }
    killBeam();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", killAll);

  const stop = async () => {
    process.removeListener("exit", killAll);
    // The node first (the server script passes SIGTERM on to the VM), then its epmd.
    for (const child of [...started].reverse()) await stopChild(child);
    killBeam();
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await mkdir(join(dir, "home"));
    await writeFile(join(dir, "enabled_plugins"), "[rabbitmq_consistent_hash_exchange].\n");
    const epmd = spawn("epmd", ["-port", String(epmdPort), "-address", HOST], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    started.push(epmd);
    keep(epmd);
    await waitForPort(epmdPort, epmd, () => `epmd did not start:\n${tail.join("\n")}`);

    const spawnedAt = performance.now();
    const node = spawn(SERVER_SCRIPT, [], {
      cwd: dir,
      // A group of its own: the script, the VM and its helpers end together.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
        LANG: "C.UTF-8",
        // The Erlang cookie is written to $HOME/.erlang.cookie.
        HOME: join(dir, "home"),
        RABBITMQ_NODENAME: nodeName,
        RABBITMQ_NODE_IP_ADDRESS: HOST,
        RABBITMQ_NODE_PORT: String(amqpPort),
        RABBITMQ_DIST_PORT: String(distPort),
        ERL_EPMD_PORT: String(epmdPort),
        ERL_EPMD_ADDRESS: HOST,
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-start_epmd false",
        RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
        RABBITMQ_LOG_BASE: join(dir, "log"),
        RABBITMQ_PID_FILE: join(dir, "rabbitmq.pid"),
        RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, "enabled_plugins"),
        // Files that do not exist: no configuration of /etc/rabbitmq applies.
        RABBITMQ_CONF_ENV_FILE: join(dir, "rabbitmq-env.conf"),
        RABBITMQ_CONFIG_FILE: join(dir, "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, "advanced.config"),
      },
    });
    started.push(node);
    keep(node);
    const url = `amqp://guest:guest@${HOST}:${amqpPort}`;
    const version = await waitForAmqp(url, node, () => tail.join("\n"));
    const startSeconds = (performance.now() - spawnedAt) / 1000;
    beamPid = Number((await readFile(join(dir, "rabbitmq.pid"), "utf8")).trim());
    const comm = await readFile(`/proc/${beamPid}/comm`, "utf8").catch(() => "");
    if (comm.trim() !== "beam.smp") {
      throw new Error(`the pid file names ${beamPid} (${comm.trim() || "gone"}), not beam.smp`);
    }
    log(
      `rabbitmq: ${version} (package ${packageVersion}) on ${url.replace(/\/\/.*@/, "//")}, node ${nodeName}, up in ${startSeconds.toFixed(1)} s`,
    );
    return { url, beamPid, version, startSeconds, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Resolves once `port` accepts a TCP connection; throws if `child` ends first or time is up. */
async function waitForPort(port: number, child: ChildProcess, why: () => string): Promise<void> {
  const deadline = performance.now() + START_TIMEOUT_MS;
  while (performance.now() < deadline && child.exitCode === null) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connectTcp(port, HOST);
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await sleep(POLL_MS);
  }
  throw new Error(why());
}

/** Resolves with the node's version once it accepts an AMQP connection. */
async function waitForAmqp(url: string, node: ChildProcess, output: () => string): Promise<string> {
  const deadline = performance.now() + START_TIMEOUT_MS;
  let last: unknown;
  while (performance.now() < deadline && node.exitCode === null && node.signalCode === null) {
    try {
      const connection = await connect(url);
      const { product, version, platform } = connection.connection.serverProperties;
      await connection.close();
      return `${product} ${version} on ${platform}`;
    } catch (error) {
      last = error;
      await sleep(POLL_MS);
    }
  }
  const why = node.exitCode === null ? `not up in ${START_TIMEOUT_MS / 1000} s` : "exited";
  throw new Error(
    `rabbitmq-server ${why} (${last instanceof Error ? last.message : String(last)}). Output:\n${output()}`,
  );
}

/** SIGTERM to the child, SIGKILL to its process group after the grace period. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), STOP_GRACE_MS);
  });
  const ended = await Promise.race([closed.then(() => true), graceOver]);
  clearTimeout(timer);
  if (ended) return;
  killQuietly(-child.pid);
  await closed;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}
