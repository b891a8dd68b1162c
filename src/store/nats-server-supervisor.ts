import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

/**
 * Runs nats-server under /bin/sh so that it stops cleanly when the broker dies, even by
 * SIGKILL (Node has no PR_SET_PDEATHSIG). The shell's stdin is a pipe from the broker that
 * the broker never writes to: a watcher reads it and, at end of file (the broker closed it,
 * or died), sends nats-server SIGTERM, after which JetStream flushes and the server exits.
 * The shell waits for the server and ends the way it ended (exit code or signal).
 *
 * Fd 3 carries the server's pid to the broker once and is then closed. The server's and the
 * shell's output go to the log file the caller passes: never to a pipe of the broker, or a
 * dead broker would kill the server with SIGPIPE at its next log line.
 *
 * Background commands of a non-interactive shell get /dev/null as stdin, hence the copy of
 * stdin on fd 4 for the watcher.
 *
 * umask 077: what nats-server creates (store files, pid file) is its owner's only.
 */
const SCRIPT = `umask 077
exec 4<&0 </dev/null
"$@" 3>&- 4<&- &
server=$!
echo "$server" >&3
exec 3>&-
{ while read -r _; do :; done; kill -TERM "$server"; } <&4 4<&- 2>/dev/null &
watcher=$!
exec 4<&-
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
if [ "$status" -gt 128 ]; then kill -$((status - 128)) $$; fi
exit "$status"`;

export interface SupervisedServer {
  /** The shell. Its "close" event means the server has exited. */
  shell: ChildProcess;
  /** Resolves with nats-server's own pid; rejects when the shell could not start it. */
  serverPid: Promise<number>;
}

/**
 * Starts `binary args` under the shell, its output appended to the open file `logFd`, with
 * `env` as its environment (default: this process's).
 */
export function spawnSupervised(
  binary: string,
  args: string[],
  logFd: number,
  env: NodeJS.ProcessEnv = process.env,
): SupervisedServer {
  const shell = spawn("/bin/sh", ["-c", SCRIPT, "nats-server-supervisor", binary, ...args], {
    stdio: ["pipe", logFd, logFd, "pipe"],
    env,
    // Its own process group: a Ctrl-C meant for the broker does not stop the server before
    // the broker has drained; the broker stops it when it is done.
    detached: true,
  });
  // stop() ends stdin; if the shell is gone by then, the pipe error is of no interest.
  shell.stdin?.on("error", () => {});
  const serverPid = new Promise<number>((resolve, reject) => {
    const pidPipe = shell.stdio[3];
    if (pidPipe === null || pidPipe === undefined || !("on" in pidPipe)) {
      reject(new Error("no pid pipe to the nats-server supervisor"));
      return;
    }
    const lines = createInterface({ input: pidPipe as NodeJS.ReadableStream });
    lines.once("line", (line) => {
      const pid = Number.parseInt(line, 10);
      if (Number.isInteger(pid) && pid > 0) resolve(pid);
      else reject(new Error(`the nats-server supervisor reported pid "${line}"`));
    });
    lines.once("close", () => reject(new Error("the nats-server supervisor reported no pid")));
    shell.once("error", reject);
  });
  serverPid.catch(() => {}); // The caller sees the failure through the exit as well.
  return { shell, serverPid };
}

/** Closes the pipe the watcher reads: the server gets SIGTERM and stops cleanly. */
export function releaseServer(shell: ChildProcess): void {
  shell.stdin?.end();
}

/** SIGKILL to the shell, its watcher and the server alike (they share a process group). */
export function killSupervisedGroup(shell: ChildProcess): void {
  // Once the shell has exited its pid, and so the group id, may belong to others.
  if (shell.pid === undefined || shell.exitCode !== null || shell.signalCode !== null) return;
  try {
    process.kill(-shell.pid, "SIGKILL");
  } catch {
    // The group is gone already.
  }
}
