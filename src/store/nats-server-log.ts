import { readFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";

const READY_LINE = "Server is ready";
const POLL_MS = 10;
const TAIL_LINES = 20;

/**
 * The log file the embedded nats-server writes (fresh at each start). Its output goes to a
 * file rather than a pipe (see nats-server-supervisor.ts), so readiness is read from there.
 */
export class NatsServerLog {
  constructor(private readonly file: string) {}

  /**
   * Resolves once the server has logged that it is ready (after its listener is up and
   * JetStream has recovered its store). Looks every 10 ms until then or until `signal`.
   */
  async waitForReady(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if ((await this.read()).includes(READY_LINE)) return;
      await delay(POLL_MS);
    }
  }

  /** The last lines written, for error messages. */
  async tail(): Promise<string> {
    const lines = (await this.read()).split("\n").filter((line) => line !== "");
    return lines.length === 0 ? "(no output)" : lines.slice(-TAIL_LINES).join("\n");
  }

  private async read(): Promise<string> {
    try {
      return await readFile(this.file, "utf8");
    } catch {
      return "";
    }
  }
}
