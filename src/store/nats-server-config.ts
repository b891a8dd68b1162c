import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NatsCredentials } from "./nats-credentials.js";

export interface NatsServerConfigOptions {
  /** `sync_interval: always` (nats-server 2.10+ only). */
  syncAlways: boolean;
  /** The user and password every client must present; none: the server is open. */
  credentials: NatsCredentials | undefined;
}

/**
 * Writes what nats-server takes only from a config file (the fsync setting), or must not
 * take from the command line (credentials: other local users can read a process's command
 * line in /proc/<pid>/cmdline), to `<storeDir>/nats-server.conf`, mode 0600, at each start.
 * Command-line options (address, ports, store directory) are merged over it. Resolves with
 * the file, or undefined when there is nothing to write (and removes an old one).
 */
export async function writeNatsServerConfig(
  storeDir: string,
  options: NatsServerConfigOptions,
): Promise<string | undefined> {
  const file = join(storeDir, "nats-server.conf");
  // A file left by an earlier run may have a wider mode, which a rewrite would keep.
  await rm(file, { force: true });
  const lines: string[] = [];
  if (options.syncAlways) {
    lines.push(
      "# fsync every JetStream write: a crash of the server or the machine loses nothing acked.",
      "jetstream {",
      "  sync_interval: always",
      "}",
    );
  }
  if (options.credentials !== undefined) {
    lines.push(
      "# Generated at this start; only the broker that started the server knows them.",
      "authorization {",
      `  user: ${quote(options.credentials.user)}`,
      `  password: ${quote(options.credentials.password)}`,
      "}",
    );
  }
  if (lines.length === 0) return undefined;
  const header =
    "# Written by sessionbus at each start of its embedded nats-server; edits are lost.";
  await writeFile(file, `${[header, ...lines].join("\n")}\n`, { mode: 0o600, flag: "wx" });
  return file;
}

/** A double-quoted config string; the generated values are base64url, but be safe anyway. */
function quote(value: string): string {
  if (/["\\\n]/.test(value)) throw new Error("nats-server config values must not hold quotes");
  return `"${value}"`;
}
