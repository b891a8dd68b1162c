import { readFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";

/**
 * A broker killed with SIGKILL cannot stop its embedded nats-server, which then keeps the
 * store directory. Before starting a new one on that directory, stop the old one, found
 * through the pid file nats-server writes there (`-P`).
 */
export async function stopStaleNatsServer(pidFile: string, timeoutMs = 10_000): Promise<void> {
  const pid = await readPid(pidFile);
  if (pid === undefined || !(await isNatsServer(pid))) return;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  // No event tells when an unrelated process exits; look every 50 ms, bounded.
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      return;
    }
    await delay(50);
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

async function isNatsServer(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  try {
    return (await readFile(`/proc/${pid}/cmdline`, "utf8")).includes("nats-server");
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
