/**
 * One ReceiveStream RPC read ahead into a buffer (at most `prefetch` messages: the broker's
 * credit), handed out one message at a time, with the session recall rules:
 *
 * - An abandon under a session lock voids every other unsettled delivery of the session;
 *   the broker announces them in a `recalled` event before the abandoned message comes
 *   again. Voided messages still in the buffer are dropped when the event arrives.
 * - Between our own abandon and that event, what is buffered may be void, so nothing is
 *   handed out: the receiver waits for the event.
 * - The broker may leave out an event that would be empty (nothing else was in flight).
 *   So the wait also ends when a message at or before the abandoned one's sequence number
 *   arrives: the stream restarted there, so every message up to it came after the recall.
 *
 * With several brokers, each RPC runs on a route (one broker connection), and every message
 * is noted with the route it came on: it can only be settled there. A stream whose
 * connection failed, or that the broker ended, is reopened on the broker the client uses
 * now when `reopenAcross` allows it (receivers without sessions); otherwise it fails with
 * what `failure` makes of the error (a session receiver: its session is lost).
 */
import type { ReceiveStreamResponse } from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { toSessionBusError } from "./errors.js";
import type { BrokerRoute } from "./failover/broker-route.js";
import type { ConnectionFailure } from "./failover/connection-failure.js";
import { fromProtoMessage, type ReceivedMessage } from "./message.js";
import { pause, retryDelayMs } from "./retry.js";

/** Opens the RPC (along `route`, with several brokers); the stream ends when `signal` aborts. */
export type OpenReceiveStream = (
  signal: AbortSignal,
  route: BrokerRoute | undefined,
) => AsyncIterable<ReceiveStreamResponse>;

/** How a stream runs over several brokers. */
export interface StreamRouting {
  /** The route of the next opening: always the same one (a session's), or a new one. */
  route(): BrokerRoute;
  /**
   * How the route's connection failed: "unsent" when the broker could not be reached at
   * all, "broken" when the connection failed under the stream; undefined while intact.
   */
  connectionFailure(route: BrokerRoute): ConnectionFailure | undefined;
  /**
   * Reopen the stream on the next broker when its connection failed or the broker ended
   * it, until openings failed "unsent" on this many brokers in a row; 0: never reopen.
   */
  reopenAcross: number;
  /** What the stream fails with, for an error of `route` (e.g. a lost session). */
  failure(error: unknown, route: BrokerRoute): unknown;
}

/** What the receiver reports back once an abandon under a session lock has an outcome. */
export interface PendingAbandon {
  settled(succeeded: boolean): void;
}

export class ReceiveStream {
  /** Received, not yet handed out, in order. */
  private readonly buffer: ReceivedMessage[] = [];
  /** Lock tokens of what this stream delivered and is not settled yet. */
  private readonly unsettled = new Set<string>();
  private readonly stop = new AbortController();
  private started = false;
  private ended = false;
  private failure: unknown;
  private changed: (() => void)[] = [];
  /** Abandons sent whose outcome is not known yet: nothing is handed out meanwhile. */
  private abandoning = 0;
  /** Set after our abandon until the recall: the abandoned message's sequence number. */
  private recallAt: bigint | undefined;
  private recalls = 0;
  /** The route each message came on, with several brokers. */
  private readonly routes = new WeakMap<ReceivedMessage, BrokerRoute>();

  constructor(
    private readonly open: OpenReceiveStream,
    private readonly prefetch: number,
    private readonly routing?: StreamRouting,
  ) {}

  /** The route `message` came on; undefined with one broker (or for other messages). */
  routeOf(message: ReceivedMessage): BrokerRoute | undefined {
    return this.routes.get(message);
  }

  /**
   * The next message; undefined when none arrived within `maxWaitMs` or the stream ended
   * (the session was closed, or the broker shut down). Throws the stream's failure.
   */
  async next(
    maxWaitMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<ReceivedMessage | undefined> {
    signal?.throwIfAborted();
    this.start();
    const deadline = maxWaitMs === undefined ? undefined : Date.now() + maxWaitMs;
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const message = this.take();
      if (message) return message;
      if (this.ended) return undefined;
      const left = deadline === undefined ? undefined : deadline - Date.now();
      if (left !== undefined && left <= 0) return undefined;
      await this.whenChanged(left, signal);
      signal?.throwIfAborted();
    }
  }

  /** Call before abandoning a message; the stream holds back until the outcome is known. */
  beginAbandon(message: ReceivedMessage): PendingAbandon | undefined {
    // Not delivered by this stream (a deferred message): nothing is recalled for it.
    if (!this.unsettled.has(message.lockToken)) return undefined;
    // With nothing else unsettled and no credit left, nothing else can be in flight: the
    // recall (if announced) is empty and there is nothing to wait for.
    const alone = this.unsettled.size === 1 && this.prefetch <= 1;
    const recallsBefore = this.recalls;
    this.abandoning++;
    return {
      settled: (succeeded) => {
        this.abandoning--;
        if (succeeded) {
          this.unsettled.delete(message.lockToken);
          if (!alone && this.recalls === recallsBefore) {
            const at = message.sequenceNumber;
            this.recallAt = this.recallAt === undefined || at < this.recallAt ? at : this.recallAt;
          }
        }
        this.notify();
      },
    };
  }

  /** The delivery is settled (or its lock is gone): it no longer counts as in flight. */
  settled(lockToken: string): void {
    this.unsettled.delete(lockToken);
  }

  /** Ends the RPC; later next() calls return undefined. */
  close(): void {
    this.stop.abort();
    this.end();
  }

  private take(): ReceivedMessage | undefined {
    if (this.abandoning > 0) return undefined;
    const at = this.recallAt;
    if (at !== undefined) {
      if (!this.buffer.some((m) => m.sequenceNumber <= at)) return undefined;
      // The abandoned message came again without a recall event: nothing was voided.
      this.recallAt = undefined;
    }
    return this.buffer.shift();
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    const routing = this.routing;
    /** Openings in a row that brought no message, and of those, the unreachable ones. */
    let empty = 0;
    let unreachable = 0;
    for (;;) {
      const route = routing?.route();
      let failure: unknown;
      let failed = false;
      try {
        for await (const response of this.open(this.stop.signal, route)) {
          empty = 0;
          unreachable = 0;
          const { event } = response;
          if (event.case === "message") {
            const message = fromProtoMessage(event.value);
            if (message.lockToken !== "") this.unsettled.add(message.lockToken);
            if (route) this.routes.set(message, route);
            this.buffer.push(message);
          } else if (event.case === "recalled") {
            this.recall(new Set(event.value.lockTokens));
          }
          this.notify();
        }
      } catch (error) {
        failure = error;
        failed = true;
      }
      if (this.stop.signal.aborted) break;
      if (routing === undefined || route === undefined) {
        if (failed) this.failure = toSessionBusError(failure);
        break;
      }
      // Reopened when the connection failed, or the broker ended the stream (it stops).
      const how = routing.connectionFailure(route);
      unreachable = how === "unsent" ? unreachable + 1 : 0;
      if ((failed && how === undefined) || unreachable >= routing.reopenAcross) {
        if (failed) this.failure = routing.failure(failure, route);
        break;
      }
      // What the old stream delivered can only be settled through its broker: let it go.
      this.dropDeliveries();
      // Every broker at once; a broker that takes streams and drops them is asked less often.
      empty++;
      if (empty > routing.reopenAcross) {
        await pause(retryDelayMs(empty - routing.reopenAcross), this.stop.signal);
      }
    }
    this.end();
  }

  /** Forgets what was received and not settled (the stream it came on is gone). */
  private dropDeliveries(): void {
    this.buffer.length = 0;
    this.unsettled.clear();
    this.recallAt = undefined;
    this.notify();
  }

  private recall(tokens: Set<string>): void {
    this.recalls++;
    this.recallAt = undefined;
    for (const token of tokens) this.unsettled.delete(token);
    const kept = this.buffer.filter((m) => !tokens.has(m.lockToken));
    this.buffer.splice(0, this.buffer.length, ...kept);
  }

  private end(): void {
    this.ended = true;
    // What is still buffered cannot be settled any more: its session or stream is gone.
    this.buffer.length = 0;
    this.unsettled.clear();
    this.notify();
  }

  private notify(): void {
    for (const wake of this.changed.splice(0)) wake();
  }

  private whenChanged(timeoutMs: number | undefined, signal: AbortSignal | undefined) {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        const index = this.changed.indexOf(done);
        if (index >= 0) this.changed.splice(index, 1);
        resolve();
      };
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs);
      signal?.addEventListener("abort", done);
      this.changed.push(done);
    });
  }
}
