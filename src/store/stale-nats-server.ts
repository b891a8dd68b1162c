import { readFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";

const KILL_WAIT_MS = 5_000;

/**
 * The fallback for a nats-server left running on the store directory (its supervisor shell
 * was killed too, or it was started by an older sessionbus): before starting a new one on
 * that directory, stop the old one, found through the pid file nats-server writes there
 * (`-P`). SIGTERM, so that JetStream flushes; SIGKILL only when it ignores that for
 * `timeoutMs`.
 */
export async function stopStaleNatsServer(pidFile: string, timeoutMs = 30_000): Promise<void> {
  const pid = await readPid(pidFile);
  if (pid === undefined || !(await isServerOf(pid, pidFile))) return;
  signal(pid, "SIGTERM");
  if (await exitWithin(pid, timeoutMs)) return;
  signal(pid, "SIGKILL");
  await exitWithin(pid, KILL_WAIT_MS);
}

/** No event tells when an unrelated process exits; look every 50 ms, bounded. */
async function exitWithin(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await delay(50);
  }
  return true;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // It has exited in the meantime.
  }
}

async function readPid(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(pidFile, "utf8")).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is the nats-server that wrote `pidFile`: its arguments name that very file.
 * Pids are reused (pid_max is 32,768 here), so a pid file left by a dead server may name
 * another process by now, even another nats-server.
 */
async function isServerOf(pid: number, pidFile: string): Promise<boolean> {
  if (!isAlive(pid)) return false;
  try {
    const args = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    return args.some((arg) => arg.endsWith("nats-server")) && args.includes(pidFile);
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
