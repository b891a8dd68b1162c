import { execFile } from "node:child_process";

/** The first release with `sync_interval` under `jetstream {}` (nats.docs, configuration). */
const SYNC_INTERVAL_SINCE = [2, 10, 0] as const;
const VERSION_TIMEOUT_MS = 10_000;

/**
 * The version of a nats-server binary, as `nats-server --version` prints it ("nats-server:
 * v2.9.10"). Rejects with the spawn error (e.g. ENOENT) when it cannot be run; resolves
 * with what it printed, trimmed, even when that is not a version.
 */
export function readNatsServerVersion(binary: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, ["--version"], { timeout: VERSION_TIMEOUT_MS }, (error, stdout, stderr) => {
      const printed = `${stdout}${stderr}`.trim();
      // A spawn failure has a string code (ENOENT, EACCES); an exit status is a number.
      if (error !== null && typeof (error as NodeJS.ErrnoException).code === "string") {
        reject(error);
      } else {
        resolve(printed);
      }
    });
  });
}

/**
 * Whether the `--version` output names a release that knows `sync_interval: always`
 * (2.10.0 and later). Anything unreadable counts as no: the option would stop an older
 * server from starting. A pre-release of 2.10.0 counts as older.
 */
export function supportsSyncAlways(versionOutput: string): boolean {
  const found = /\bv?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?/.exec(versionOutput);
  if (found === null) return false;
  const version = [Number(found[1]), Number(found[2]), Number(found[3])];
  for (let i = 0; i < version.length; i++) {
    const difference = (version[i] as number) - SYNC_INTERVAL_SINCE[i];
    if (difference !== 0) return difference > 0;
  }
  return found[4] === undefined;
}
