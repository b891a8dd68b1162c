import { randomBytes } from "node:crypto";
import {
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import type { ReplicaCount } from "./replicas.js";
import { ALL_HEALTH_SUBJECTS, HEALTH_STREAM, healthSubject } from "./subjects.js";

export interface WriteProbeOptions {
  /** From the end of one probe write to the start of the next. @default 2_000 */
  intervalMs?: number;
  /** How long a probe write waits for JetStream's acknowledgement. @default 2_000 */
  timeoutMs?: number;
}

const DEFAULT_INTERVAL_MS = 2_000;
const DEFAULT_TIMEOUT_MS = 2_000;
const STREAM_NAME_IN_USE = 10058;

/**
 * Creates the probe's stream, or brings an existing one to `replicas`. It keeps one small
 * message per broker process, for ten minutes after that broker's last write, on disk like
 * every other stream, so a full disk fails the probe too.
 */
export async function ensureHealthStream(
  jsm: JetStreamManager,
  replicas: ReplicaCount,
): Promise<void> {
  const config = {
    name: HEALTH_STREAM,
    subjects: [ALL_HEALTH_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_msgs_per_subject: 1,
    max_age: nanos(600_000),
    duplicate_window: nanos(1_000),
    num_replicas: replicas,
  };
  try {
    await jsm.streams.add(config);
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === STREAM_NAME_IN_USE)) throw error;
    await jsm.streams.update(config.name, config);
  }
}

/**
 * Whether the store takes writes, found out by writing. Every couple of seconds, two requests
 * go out together, each with a short timeout:
 * - a tiny message to the health stream, which has as many replicas as every other stream:
 *   JetStream acknowledges it only once a majority of those replicas has it, so a failed or
 *   late acknowledgement means what a failed Send would mean (no connection, no stream
 *   leader, no quorum, a server out of disk);
 * - JetStream's account info, which in a cluster only the meta leader answers: without one,
 *   no queue can be created and no session accepted (both make consumers).
 * Both must succeed. A dropped connection counts at once (no request needed); after a
 * reconnect the next probe runs at once.
 */
export class WriteProbe {
  private readonly subject = healthSubject(randomBytes(8).toString("hex"));
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly listeners: ((writable: boolean) => void)[] = [];
  private writableNow = true;
  private connected = true;
  /** Raised by every disconnect: a probe that started before one cannot say "writable". */
  private epoch = 0;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private stopped = false;

  private readonly js: JetStreamClient;
  private jsm: Promise<JetStreamManager> | undefined;

  constructor(nc: NatsConnection, options: WriteProbeOptions = {}) {
    this.intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.js = jetstream(nc, { timeout: this.timeoutMs });
  }

  /** Whether the last probe (or connection event) said the store takes writes. */
  get writable(): boolean {
    return this.writableNow;
  }

  /** Calls `listener` each time `writable` changes. */
  onChange(listener: (writable: boolean) => void): void {
    this.listeners.push(listener);
  }

  /** Starts probing; the first write goes out after one interval. */
  start(): void {
    this.schedule(this.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The connection's news: lost means not writable now; back means probe now. */
  connectionChanged(connected: boolean): void {
    this.connected = connected;
    if (!connected) {
      this.epoch++;
      this.set(false);
    } else if (!this.probing) {
      this.schedule(0);
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.probe(), delayMs);
    // The probe never keeps a process alive on its own.
    this.timer.unref();
  }

  private async probe(): Promise<void> {
    if (this.stopped || this.probing) return;
    this.probing = true;
    const epoch = this.epoch;
    let ok: boolean;
    try {
      // No API check: it would be a third request, and the account info is one already.
      this.jsm ??= this.js.jetstreamManager(false);
      const jsm = await this.jsm;
      await Promise.all([
        this.js.publish(this.subject, String(Date.now()), {
          timeout: this.timeoutMs,
          expect: { streamName: HEALTH_STREAM },
        }),
        jsm.getAccountInfo(),
      ]);
      ok = true;
    } catch {
      ok = false;
    } finally {
      this.probing = false;
    }
    if (this.stopped) return;
    // The connection dropped while the write was out: its answer is about the old one.
    const stale = epoch !== this.epoch;
    if (!ok) this.set(false);
    else if (this.connected && !stale) this.set(true);
    this.schedule(stale && this.connected ? 0 : this.intervalMs);
  }

  private set(writable: boolean): void {
    if (writable === this.writableNow) return;
    this.writableNow = writable;
    for (const listener of this.listeners) listener(writable);
  }
}
