/** The machine and the versions a run measured, for the JSON result. */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { projectRoot } from "./processes.js";

const run = promisify(execFile);
const COMMAND_TIMEOUT_MS = 10_000;

/** Packages whose versions matter to the figures. */
const PACKAGES = [
  "@nats-io/transport-node",
  "@nats-io/jetstream",
  "@nats-io/kv",
  "@connectrpc/connect",
  "@connectrpc/connect-node",
  "@bufbuild/protobuf",
  "tsx",
  "amqplib",
];

export interface Machine {
  os: string;
  kernel: string;
  arch: string;
  cpuModel: string;
  cpus: number;
  memoryBytes: number;
  /** 1-minute load average when the run started: other work on the machine skews figures. */
  loadAverage1m: number;
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    os: `${os.type()} ${os.platform()}`,
    kernel: os.release(),
    arch: os.arch(),
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cpus: cpus.length,
    memoryBytes: os.totalmem(),
    loadAverage1m: os.loadavg()[0] ?? 0,
  };
}

export interface Versions {
  sessionbus: string;
  /** Commit of the checkout, "+dirty" when the broker's code (src, gen, proto) has changes. */
  commit: string;
  node: string;
  natsServer: string;
  packages: Record<string, string>;
  /** With --peers: the Debian package versions of the peers' servers. */
  peers?: Record<string, string>;
}

/** The nats-server the run starts: NATS_SERVER_BIN, else on PATH, else Debian's. */
async function natsServerVersion(): Promise<string> {
  for (const binary of [process.env.NATS_SERVER_BIN || "nats-server", "/usr/sbin/nats-server"]) {
    const version = await output(binary, ["--version"]);
    if (version !== "unknown") return version;
  }
  return "unknown";
}

export async function describeVersions(peers = false): Promise<Versions> {
  const packages: Record<string, string> = {};
  for (const name of PACKAGES) packages[name] = await packageVersion(join("node_modules", name));
  return {
    sessionbus: await packageVersion("."),
    commit: await gitCommit(),
    node: process.version,
    natsServer: await natsServerVersion(),
    packages,
    ...(peers
      ? {
          peers: {
            "rabbitmq-server": await debianVersion("rabbitmq-server"),
            "erlang-base": await debianVersion("erlang-base"),
          },
        }
      : {}),
  };
}

/** dpkg's version of an installed Debian package. */
function debianVersion(name: string): Promise<string> {
  const format = "$" + "{Version}"; // dpkg-query's field, not a template placeholder
  return output("dpkg-query", ["-W", "-f", format, name]);
}

async function packageVersion(dir: string): Promise<string> {
  try {
    const text = await readFile(join(projectRoot, dir, "package.json"), "utf8");
    return String((JSON.parse(text) as { version?: unknown }).version ?? "unknown");
  } catch {
    return "not installed";
  }
}

async function gitCommit(): Promise<string> {
  const commit = await output("git", ["rev-parse", "--short", "HEAD"]);
  const status = await output("git", ["status", "--porcelain", "--", "src", "gen", "proto"]);
  return status === "" || status === "unknown" ? commit : `${commit}+dirty`;
}

async function output(command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd: projectRoot, timeout: COMMAND_TIMEOUT_MS });
    return stdout.trim();
  } catch {
    return "unknown";
  }
}
