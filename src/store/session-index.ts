import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import type { DeliveryBatch } from "./message-streams.js";
import type { PipelinedRequests } from "./pipelined-requests.js";
import { isInterruptedPull, PullInterruptedError } from "./pull-errors.js";
import type { ReplicaCount } from "./replicas.js";
import { LIBRARY_MIN_PULL_MS, shortPull } from "./short-pull.js";
import { publishToStream } from "./stream-publish.js";
import {
  ACCEPT_CONSUMER,
  allSessionIndexSubjects,
  sessionIndexStream,
  sessionIndexSubject,
} from "./subjects.js";

/** A session offered to accept-next, and what to do with the offer. */
export interface SessionOffer {
  token: string;
  /** How many times this entry has been handed out (1 the first time). */
  attempt: number;
  /** Taken: the offer is used up. */
  ack(): void;
  /** Not taken now: offer it again after `delayMs` (0: at once). */
  retry(delayMs: number): void;
  /** Keeps the offer while its session is held (restarts ack_wait). */
  keep(): void;
}

/**
 * Accept-next without scanning sessions. Every send to a session publishes an entry on that
 * session's subject in a small per-entity stream that keeps only the latest entry per
 * subject; a durable pull consumer hands entries to accept-next callers, and a waiting pull
 * is answered the moment an entry is published. An accepted session's entry stays unacked
 * while it is held, so a holder that dies lets it come back after ack_wait (the lock
 * duration). The invariant: a session with messages always has an unacked entry.
 */
export class SessionIndex {
  private readonly consumers = new Map<string, Promise<Consumer>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly requests: PipelinedRequests,
    /** Copies of each index stream (SESSIONBUS_REPLICAS); its consumer has as many. */
    private readonly replicas: ReplicaCount,
  ) {}

  async ensure(streamId: string, lockDurationMs: number): Promise<void> {
    const config = {
      name: sessionIndexStream(streamId),
      subjects: [allSessionIndexSubjects(streamId)],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_msgs_per_subject: 1,
      num_replicas: this.replicas,
    };
    try {
      await this.jsm.streams.add(config);
    } catch {
      await this.jsm.streams.update(config.name, config);
    }
    await this.jsm.consumers.add(config.name, {
      durable_name: ACCEPT_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(lockDurationMs),
      max_deliver: -1,
      max_ack_pending: -1,
      max_waiting: 4096,
    });
    this.consumers.delete(streamId);
  }

  async remove(streamId: string): Promise<void> {
    this.consumers.delete(streamId);
    await this.jsm.streams.delete(sessionIndexStream(streamId)).catch(() => undefined);
  }

  /** Says that the session may have work. */
  async offer(streamId: string, token: string): Promise<void> {
    await publishToStream(this.requests, sessionIndexSubject(streamId, token), new Uint8Array(0));
  }

  /**
   * The next offered session, or undefined when none comes within `expiresMs`. A wait
   * under a second (nats.js's fetch refuses those) goes through a raw short pull, so a
   * short max_wait of accept-next is kept.
   */
  async next(
    streamId: string,
    expiresMs: number,
    signal: AbortSignal,
  ): Promise<SessionOffer | undefined> {
    if (expiresMs < LIBRARY_MIN_PULL_MS) return this.nextShort(streamId, expiresMs, signal);
    const consumer = await this.consumer(streamId);
    const batch = await consumer.fetch({ max_messages: 1, expires: expiresMs });
    const stop = () => batch.stop();
    signal.addEventListener("abort", stop);
    try {
      for await (const m of batch) {
        return {
          token: tokenOf(m.subject),
          attempt: m.info.deliveryCount,
          ack: () => m.ack(),
          retry: (delayMs) => m.nak(delayMs > 0 ? delayMs : undefined),
          keep: () => m.working(),
        };
      }
      return undefined;
    } catch (error) {
      // An offer delivered to this abandoned pull comes back after ack_wait.
      if (isInterruptedPull(error)) return undefined;
      throw error;
    } finally {
      signal.removeEventListener("abort", stop);
    }
  }

  private async nextShort(
    streamId: string,
    expiresMs: number,
    signal: AbortSignal,
  ): Promise<SessionOffer | undefined> {
    const batch: DeliveryBatch = shortPull(
      this.nc,
      this.requests,
      sessionIndexStream(streamId),
      ACCEPT_CONSUMER,
      1,
      expiresMs,
      () => this.nc.flush(),
    );
    const stop = () => batch.stop();
    signal.addEventListener("abort", stop);
    try {
      for await (const delivery of batch) {
        // What the offer does with its entry is not waited for, as with the fetch above.
        const quietly = (settle: Promise<void>) => void settle.catch(() => undefined);
        return {
          token: tokenOf(delivery.subject),
          attempt: delivery.deliveryCount,
          ack: () => quietly(delivery.ack()),
          retry: (delayMs) => quietly(delivery.nak(delayMs > 0 ? delayMs : undefined)),
          keep: () => quietly(delivery.extend()),
        };
      }
      return undefined;
    } catch (error) {
      if (error instanceof PullInterruptedError) return undefined;
      throw error;
    } finally {
      signal.removeEventListener("abort", stop);
    }
  }

  private consumer(streamId: string): Promise<Consumer> {
    let consumer = this.consumers.get(streamId);
    if (!consumer) {
      consumer = this.js.consumers.get(sessionIndexStream(streamId), ACCEPT_CONSUMER);
      consumer.catch(() => this.consumers.delete(streamId));
      this.consumers.set(streamId, consumer);
    }
    return consumer;
  }
}

/** The session token: the last token of an index entry's subject. */
function tokenOf(subject: string): string {
  return subject.slice(subject.lastIndexOf(".") + 1);
}
