import { createHash } from "node:crypto";
import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  RetentionPolicy,
  StorageType,
  type StoredMsg,
  type StreamInfo,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import type { Delivery, DeliveryBatch } from "./delivery.js";
import type { EntitySettings } from "./entity-record.js";
import { FiguresCache } from "./figures-cache.js";
import { onePullAtATime } from "./one-pull-at-a-time.js";
import type { PipelinedRequests } from "./pipelined-requests.js";
import { isInterruptedPull, PullInterruptedError } from "./pull-errors.js";
import type { ReplicaCount } from "./replicas.js";
import { type StreamLog, withoutGaps, withRemovalThroughLog } from "./replicated-removal.js";
import { inLeaderOrder } from "./session-order-on-leader.js";
import { LIBRARY_MIN_PULL_MS, shortPull } from "./short-pull.js";
import { type PublishAck, publishToStream } from "./stream-publish.js";
import {
  allActiveSubjects,
  allDeferredSubjects,
  allScheduledSubjects,
  deferredSubject,
  type MessageLayout,
  PLAIN_CONSUMER,
  plainFilter,
  scheduledSubject,
  sessionFilter,
  slotFilter,
  streamIdOf,
  streamName,
  streamSubjects,
  tokenOfSubject,
  topicMarkerSubject,
  topicStreamName,
  topicSubjects,
} from "./subjects.js";

export type { Delivery, DeliveryBatch } from "./delivery.js";

/** The consumer of one locked session. */
export interface MessageReader {
  fetch(max: number, expiresMs: number): Promise<DeliveryBatch>;
}

export interface StoredMessage {
  sequence: number;
  subject: string;
  data: Uint8Array;
}

/** How long a topic stream keeps a message its subscriptions have (almost at once) copied. */
export const TOPIC_RETENTION_MS = 3600_000;

/** The topic slot a subscription's stream copies messages from. */
export interface TopicSource {
  topicStreamId: string;
  slot: number;
}

/** What a stream stores. */
export interface StreamTotals {
  messages: number;
  bytes: number;
}

/** What a queue's or subscription's stream stores, and how much of it waits. */
export interface StreamFigures extends StreamTotals {
  deferred: number;
  scheduled: number;
}

/**
 * The JetStream side of message storage: one work-queue stream per queue (and per
 * dead-letter queue), publishing, peeking and the shared pull consumer of session-less
 * receivers. Settling through the consumer's acks is the cheap way to remove messages.
 */
export class MessageStreams {
  private readonly consumers = new Map<string, Promise<Consumer>>();
  private readonly figuresCache = new FiguresCache((stream) => this.readFigures(stream));
  private readonly totalsCache = new FiguresCache((stream) => this.readTotals(stream));
  private readonly sessionCountsCache = new FiguresCache((stream) =>
    this.readSessionCounts(stream, this.activeFilterOf(stream)),
  );
  /** The subjects filter of each stream's active messages, noted when its counts are asked. */
  private readonly activeFilters = new Map<string, string>();
  /** Every write to a stream (publish, confirmed ack, delete) ends with this. */
  private readonly changed = (stream: string) => {
    this.figuresCache.changed(stream);
    this.totalsCache.changed(stream);
    this.sessionCountsCache.changed(stream);
  };

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly requests: PipelinedRequests,
    private readonly flush: () => Promise<void>,
    /** Copies of each stream (SESSIONBUS_REPLICAS); consumers have as many as their stream. */
    private readonly replicas: ReplicaCount,
  ) {}

  /**
   * Creates (or updates) the stream of a queue, subscription or dead-letter queue and its
   * receivers' consumer. Idempotent. A subscription's stream sources its topic's slot from
   * the topic's next message on; an update keeps the source as it is, so no copy is lost or
   * made twice.
   */
  async ensure(
    layout: MessageLayout,
    settings: EntitySettings,
    source?: TopicSource,
  ): Promise<void> {
    const { streamId } = layout;
    const config = {
      name: streamName(streamId),
      subjects: [streamSubjects(streamId)],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      // No max_bytes: JetStream reserves that much disk per stream up front, which would
      // cap a server at a few dozen queues. The broker enforces max_size itself (QuotaGuard).
      max_bytes: -1,
      max_msg_size: -1,
      duplicate_window: nanos(
        settings.requiresDuplicateDetection ? settings.duplicateDetectionWindowMs : 120_000,
      ),
      allow_direct: true,
      num_replicas: this.replicas,
      ...(source ? { sources: [await this.sourceFrom(source)] } : {}),
    };
    const info = await this.addOrUpdateStream(config, async () => {
      const current = await this.jsm.streams.info(config.name);
      return { ...config, sources: current.config.sources };
    });
    expectSetting(config.name, "allow_direct", info.config.allow_direct, true);
    const consumer = await this.jsm.consumers.add(streamName(streamId), {
      durable_name: PLAIN_CONSUMER,
      filter_subject: plainFilter(layout, settings.requiresSession),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(settings.lockDurationMs),
      max_deliver: -1,
      max_ack_pending: 20_000,
      max_waiting: 4096,
    });
    expectSetting(
      consumer.name,
      "ack_wait",
      consumer.config.ack_wait,
      nanos(settings.lockDurationMs),
    );
    this.consumers.delete(streamId);
  }

  /** Where a new subscription starts copying: after the topic's last message. */
  private async sourceFrom(source: TopicSource) {
    const topic = await this.jsm.streams.info(topicStreamName(source.topicStreamId));
    return {
      name: topicStreamName(source.topicStreamId),
      filter_subject: slotFilter(source.topicStreamId, source.slot),
      opt_start_seq: topic.state.last_seq + 1,
    };
  }

  /**
   * Creates (or updates) a topic's stream. Limits retention with an age limit: a message
   * stays for TOPIC_RETENTION_MS (or the duplicate window, when longer), long enough for
   * every subscription stream to copy it even across a nats-server restart. Interest
   * retention would drop messages published while a subscription's source consumer is
   * being (re)created, which JetStream does asynchronously. Duplicate detection runs here,
   * before the fan-out.
   */
  async ensureTopic(topicStreamId: string, settings: EntitySettings): Promise<void> {
    const window = settings.requiresDuplicateDetection
      ? settings.duplicateDetectionWindowMs
      : 120_000;
    const config = {
      name: topicStreamName(topicStreamId),
      subjects: [topicSubjects(topicStreamId)],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_bytes: -1,
      max_msg_size: -1,
      max_age: nanos(Math.max(TOPIC_RETENTION_MS, window)),
      duplicate_window: nanos(window),
      num_replicas: this.replicas,
    };
    await this.addOrUpdateStream(config);
  }

  /**
   * Adds the stream, or updates it (to `updated()`) when it exists. nats-server 2.9 ignores
   * settings it does not know instead of refusing them: the retention the broker relies on
   * is checked to have taken effect (the caller checks any other).
   */
  private async addOrUpdateStream(
    config: Parameters<JetStreamManager["streams"]["add"]>[0],
    updated: () => Promise<typeof config> = async () => config,
  ): Promise<StreamInfo> {
    let info: StreamInfo;
    try {
      info = await this.jsm.streams.add(config);
    } catch (error) {
      if (!isAlreadyInUse(error)) throw error;
      info = await this.jsm.streams.update(config.name, await updated());
    }
    expectSetting(config.name, "retention", info.config.retention, config.retention);
    return info;
  }

  async removeTopic(topicStreamId: string): Promise<void> {
    try {
      await this.jsm.streams.delete(topicStreamName(topicStreamId));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /**
   * Records `messageId` for the topic's duplicate detection: an empty message under the
   * marker subject, published with the id as its Nats-Msg-Id. The sequence is the marker's
   * (the first marker's, when the id is a duplicate).
   */
  async markTopicMessageId(
    topicStreamId: string,
    messageId: string,
  ): Promise<{ sequence: number; duplicate: boolean }> {
    return this.publishToTopic(
      topicStreamId,
      topicMarkerSubject(topicStreamId),
      new Uint8Array(0),
      messageId,
    );
  }

  /**
   * Whether the topic stream's message `sequence` is a marker. A message that is gone
   * counts as one (the caller then republishes under its own id, which at worst stores a
   * message again, never loses one).
   */
  async isTopicMarker(topicStreamId: string, sequence: number): Promise<boolean> {
    try {
      const found = await this.jsm.streams.getMessage(topicStreamName(topicStreamId), {
        seq: sequence,
      });
      return !found || found.subject === topicMarkerSubject(topicStreamId);
    } catch (error) {
      if (isNotFound(error)) return true;
      throw error;
    }
  }

  /** Stores one topic message once; its subject says which subscriptions copy it. */
  async publishToTopic(
    topicStreamId: string,
    subject: string,
    data: Uint8Array,
    messageId?: string,
  ): Promise<{ sequence: number; duplicate: boolean }> {
    // No expected-stream header: sourced copies keep their headers, and the subscription
    // streams would refuse a copy that names the topic's stream.
    let ack: PublishAck;
    try {
      ack = await publishToStream(this.requests, subject, data, { msgId: messageId });
    } finally {
      this.figuresCache.topicChanged(topicStreamName(topicStreamId));
    }
    if (ack.stream !== topicStreamName(topicStreamId)) {
      throw new Error(`a topic message was stored by stream ${ack.stream}, not the topic's`);
    }
    return { sequence: ack.seq, duplicate: ack.duplicate };
  }

  async remove(streamId: string): Promise<void> {
    this.consumers.delete(streamId);
    try {
      await this.jsm.streams.delete(streamName(streamId));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    } finally {
      this.changed(streamName(streamId));
    }
  }

  /** Stores one message; returns its sequence number (and whether it was a duplicate). */
  async publish(
    streamId: string,
    subject: string,
    data: Uint8Array,
    messageId?: string,
  ): Promise<{ sequence: number; duplicate: boolean }> {
    try {
      const ack = await publishToStream(this.requests, subject, data, {
        msgId: messageId,
        expectStream: streamName(streamId),
      });
      return { sequence: ack.seq, duplicate: ack.duplicate };
    } finally {
      this.changed(streamName(streamId));
    }
  }

  /** Pulls up to `max` messages of the session-less subject, waiting up to `expiresMs`. */
  async fetch(streamId: string, max: number, expiresMs: number): Promise<DeliveryBatch> {
    return this.fetchFrom(await this.plainConsumer(streamId), max, expiresMs);
  }

  /**
   * Gives a newly locked session a consumer of its own, filtered on its subject (a work-queue
   * stream allows consumers whose filters do not overlap). A consumer left by an earlier
   * holder is deleted first, so every unsettled message comes again, in sequence order.
   * Returns the consumer and how many messages the session has.
   */
  async openSessionConsumer(
    layout: MessageLayout,
    sessionId: string,
  ): Promise<{ reader: MessageReader; pending: number }> {
    const { streamId } = layout;
    await this.closeSessionConsumer(streamId, sessionId);
    const info = await this.jsm.consumers.add(streamName(streamId), {
      durable_name: sessionConsumerName(sessionId),
      filter_subject: sessionFilter(layout, sessionId),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // The session lock, not ack_wait, decides when a holder's messages come back: a
      // new holder recreates the consumer. This only bounds a lock held for half a day.
      ack_wait: nanos(12 * 3600_000),
      max_deliver: -1,
      max_ack_pending: 10_000,
      // Its state in memory: creating a file-backed consumer cost nats-server about 3–5 ms
      // of CPU (a directory and files), a memory one about 0.35 ms. Nothing durable lives
      // in it: the messages stay in the stream until acked, delivery counts are in the
      // session record, and a holder whose consumer is gone (a restarted nats-server)
      // recreates it as an abandon does.
      mem_storage: true,
    });
    const consumer = this.js.consumers.getConsumerFromInfo(info);
    if (this.replicas === 1) return { reader: this.reader(consumer), pending: info.num_pending };
    // With replicas: each delivery is checked against the session as the stream's leader
    // holds it (see inLeaderOrder): one message get per delivery, whose answer also checks
    // its removal.
    const stream = streamName(streamId);
    const filter = sessionFilter(layout, sessionId);
    const sequence = { next: 1 };
    const position = { from: 1 };
    return {
      reader: {
        fetch: onePullAtATime(async (max, expiresMs) =>
          inLeaderOrder(
            withoutGaps(await this.pull(consumer, max, expiresMs), sequence),
            position,
            (from) => this.leaderGet(stream, { seq: from, next_by_subj: filter }),
            this.streamLog(stream),
          ),
        ),
      },
      pending: info.num_pending,
    };
  }

  /** Reopens the consumer of a session held through another broker process. */
  async sessionReader(streamId: string, sessionId: string): Promise<MessageReader> {
    return this.reader(
      await this.js.consumers.get(streamName(streamId), sessionConsumerName(sessionId)),
    );
  }

  private reader(consumer: Consumer): MessageReader {
    return { fetch: (max, expiresMs) => this.fetchFrom(consumer, max, expiresMs) };
  }

  async closeSessionConsumer(streamId: string, sessionId: string): Promise<void> {
    try {
      await this.jsm.consumers.delete(streamName(streamId), sessionConsumerName(sessionId));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /** Pulls up to `max` messages from `consumer`, waiting up to `expiresMs`. */
  private async fetchFrom(
    consumer: Consumer,
    max: number,
    expiresMs: number,
  ): Promise<DeliveryBatch> {
    const batch = await this.pull(consumer, max, expiresMs);
    // One copy: the ack alone removes the message for good, as it always did. More: see
    // removeThroughStreamLog (nats-server 2.9 gave acked messages back after a failover).
    if (this.replicas === 1) return batch;
    const stream = (await consumer.info(true)).stream_name; // cached: no round trip
    return withRemovalThroughLog(batch, this.streamLog(stream));
  }

  /** How settlements of `stream` remove messages through its log (with replicas). */
  private streamLog(stream: string): StreamLog {
    return {
      requests: this.requests,
      stream,
      readOnLeader: (sequence) => this.leaderGet(stream, { seq: sequence }),
    };
  }

  private async pull(consumer: Consumer, max: number, expiresMs: number): Promise<DeliveryBatch> {
    const { flush, requests, changed } = this;
    if (expiresMs < LIBRARY_MIN_PULL_MS) {
      const info = await consumer.info(true); // cached: no round trip
      return shortPull(
        this.nc,
        requests,
        info.stream_name,
        info.name,
        max,
        expiresMs,
        flush,
        changed,
      );
    }
    const messages = await consumer.fetch({ max_messages: max, expires: expiresMs });
    return {
      stop: () => messages.stop(),
      async *[Symbol.asyncIterator]() {
        try {
          for await (const m of messages) yield toDelivery(m, requests, flush, changed);
        } catch (error) {
          throw isInterruptedPull(error) ? new PullInterruptedError(error) : error;
        }
      },
    };
  }

  /** The first active message (of one session, if given) at or after `fromSequence`. */
  async nextActive(
    layout: MessageLayout,
    fromSequence: number,
    session?: { id: string },
  ): Promise<StoredMessage | undefined> {
    return this.directGet(layout.streamId, {
      seq: Math.max(1, fromSequence),
      next_by_subj: session ? sessionFilter(layout, session.id) : allActiveSubjects(layout),
    });
  }

  /** The active message stored as `sequence`, if there is one. */
  async getActive(layout: MessageLayout, sequence: number): Promise<StoredMessage | undefined> {
    if (sequence < 1) return undefined;
    const found = await this.nextActive(layout, sequence);
    return found?.sequence === sequence ? found : undefined;
  }

  /** The first scheduled message (of one session, if given) at or after `fromSequence`. */
  async nextScheduled(
    streamId: string,
    fromSequence: number,
    session?: { id: string },
  ): Promise<StoredMessage | undefined> {
    return this.directGet(streamId, {
      seq: Math.max(1, fromSequence),
      next_by_subj: session
        ? scheduledSubject(streamId, session.id)
        : allScheduledSubjects(streamId),
    });
  }

  /** The scheduled message stored as `sequence`, if it is still scheduled. */
  async getScheduled(streamId: string, sequence: number): Promise<StoredMessage | undefined> {
    const found = await this.nextScheduled(streamId, sequence);
    return found?.sequence === sequence ? found : undefined;
  }

  /** Message count of every session subject that holds messages, by session token. */
  sessionMessageCounts(layout: MessageLayout): Promise<Map<string, number>> {
    return this.readSessionCounts(streamName(layout.streamId), allActiveSubjects(layout));
  }

  /**
   * `sessionMessageCounts`, cached as `figures` are (`sourcedFrom`: the topic a
   * subscription copies from): what an entity's runtime figures show, read per GetQueue.
   */
  recentSessionMessageCounts(
    layout: MessageLayout,
    sourcedFrom?: string,
  ): Promise<Map<string, number>> {
    const stream = streamName(layout.streamId);
    this.activeFilters.set(stream, allActiveSubjects(layout));
    const topic = sourcedFrom === undefined ? undefined : topicStreamName(sourcedFrom);
    return this.sessionCountsCache.get(stream, topic);
  }

  /** Noted by recentSessionMessageCounts before it reads through the cache. */
  private activeFilterOf(stream: string): string {
    const filter = this.activeFilters.get(stream);
    if (filter === undefined) throw new Error(`no subjects filter noted for ${stream}`);
    return filter;
  }

  private async readSessionCounts(stream: string, filter: string): Promise<Map<string, number>> {
    const info = await this.jsm.streams.info(stream, { subjects_filter: filter });
    const counts = new Map<string, number>();
    // A subscription holds one subject per session and slot vector: add them up.
    for (const [subject, count] of Object.entries(info.state.subjects ?? {})) {
      const token = tokenOfSubject(subject);
      if (token.startsWith("s")) counts.set(token, (counts.get(token) ?? 0) + count);
    }
    return counts;
  }

  /** The deferred copy of the message originally stored as `sequence`. */
  async getDeferred(streamId: string, sequence: number): Promise<StoredMessage | undefined> {
    return this.directGet(streamId, { last_by_subj: deferredSubject(streamId, sequence) });
  }

  /** Every deferred message (their copies), in the order they were deferred. */
  async *deferred(streamId: string): AsyncGenerator<StoredMessage> {
    let from = 1;
    for (;;) {
      const found = await this.directGet(streamId, {
        seq: from,
        next_by_subj: allDeferredSubjects(streamId),
      });
      if (!found) return;
      yield found;
      from = found.sequence + 1;
    }
  }

  /** Removes every message of the stream; returns how many there were. */
  async purge(streamId: string): Promise<number> {
    try {
      return (await this.jsm.streams.purge(streamName(streamId))).purged;
    } finally {
      this.changed(streamName(streamId));
    }
  }

  async deleteMessage(streamId: string, sequence: number): Promise<void> {
    try {
      await this.jsm.streams.deleteMessage(streamName(streamId), sequence, false);
    } catch (error) {
      // A message deleted already is answered "no message found" (code 500, not 404).
      if (!isNotFound(error) && !isNoMessageFound(error)) throw error;
    } finally {
      this.changed(streamName(streamId));
    }
  }

  /** Bytes the stream stores now. */
  async storedBytes(streamId: string): Promise<number> {
    return (await this.jsm.streams.info(streamName(streamId))).state.bytes;
  }

  /**
   * The figures of a queue's, subscription's or topic's stream (`sourcedFrom`: the topic a
   * subscription copies from), at most FIGURES_MAX_AGE_MS old and read again after any write
   * of this process to the stream (or to that topic): see FiguresCache.
   */
  figures(streamId: string, sourcedFrom?: string): Promise<StreamFigures> {
    const topic = sourcedFrom === undefined ? undefined : topicStreamName(sourcedFrom);
    return this.figuresCache.get(streamName(streamId), topic);
  }

  /** Messages and bytes alone (a dead-letter stream's figures), cached as `figures` are. */
  totals(streamId: string): Promise<StreamTotals> {
    return this.totalsCache.get(streamName(streamId));
  }

  private async readTotals(stream: string): Promise<StreamTotals> {
    const { state } = await this.jsm.streams.info(stream);
    return { messages: state.messages, bytes: state.bytes };
  }

  private async readFigures(stream: string): Promise<StreamFigures> {
    const streamId = streamIdOf(stream);
    // One subjects filter per request: deferred and scheduled subjects are read in parallel.
    const [info, scheduled] = await Promise.all([
      this.jsm.streams.info(stream, { subjects_filter: allDeferredSubjects(streamId) }),
      this.jsm.streams.info(stream, { subjects_filter: allScheduledSubjects(streamId) }),
    ]);
    const count = (subjects: Record<string, number> | undefined) =>
      Object.values(subjects ?? {}).reduce((a, b) => a + b, 0);
    return {
      messages: info.state.messages,
      bytes: info.state.bytes,
      deferred: count(info.state.subjects),
      scheduled: count(scheduled.state.subjects),
    };
  }

  /**
   * One message by query. With one replica, a direct get (the cheaper path). With more, a
   * message get, which the stream's leader answers: a direct get goes to any replica that
   * counts itself current, which may not yet have applied a write the leader has answered,
   * so a removed message could be read as there or a new one as missing (a session then
   * not offered again).
   */
  private async directGet(
    streamId: string,
    query: { seq: number; next_by_subj?: string } | { last_by_subj: string },
  ): Promise<StoredMessage | undefined> {
    if (this.replicas > 1) return this.leaderGet(streamName(streamId), query);
    let found: StoredMsg | null;
    try {
      found = await this.jsm.direct.getMessage(streamName(streamId), query);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    if (!found) return undefined;
    return { sequence: found.seq, subject: found.subject, data: found.data };
  }

  /** A message get (`$JS.API.STREAM.MSG.GET`), which only the stream's leader answers. */
  private async leaderGet(
    stream: string,
    query: { seq: number; next_by_subj?: string } | { last_by_subj: string },
  ): Promise<StoredMessage | undefined> {
    const reply = await this.requests.request(
      `$JS.API.STREAM.MSG.GET.${stream}`,
      JSON.stringify(query),
    );
    const answer = reply.json<MsgGetReply>();
    if (answer.message) {
      const { seq, subject, data } = answer.message;
      return {
        sequence: seq,
        subject,
        data: data ? Buffer.from(data, "base64") : new Uint8Array(),
      };
    }
    if (answer.error?.code === 404) return undefined;
    throw new JetStreamApiError({
      code: answer.error?.code ?? 500,
      err_code: answer.error?.err_code ?? 0,
      description: answer.error?.description ?? `no answer to a message get on ${stream}`,
    });
  }

  private plainConsumer(streamId: string): Promise<Consumer> {
    let consumer = this.consumers.get(streamId);
    if (!consumer) {
      consumer = this.js.consumers.get(streamName(streamId), PLAIN_CONSUMER);
      consumer.catch(() => this.consumers.delete(streamId));
      this.consumers.set(streamId, consumer);
    }
    return consumer;
  }
}

/** What `$JS.API.STREAM.MSG.GET` answers. */
interface MsgGetReply {
  message?: { seq: number; subject: string; data?: string };
  error?: { code: number; err_code?: number; description: string };
}

function toDelivery(
  m: JsMsg,
  requests: PipelinedRequests,
  flush: () => Promise<void>,
  acked: (stream: string) => void,
): Delivery {
  // nats.js's JsMsg has its reply subject at run time, though its interface does not say so.
  const reply = (m as { reply?: unknown }).reply;
  return {
    streamSequence: m.seq,
    consumerSequence: m.info.deliverySequence,
    deliveryCount: m.info.deliveryCount,
    subject: m.subject,
    data: m.data,
    // An ack with a reply subject: the server confirms it (what JsMsg.ackAck does, cheaper).
    ack: async () => {
      try {
        if (typeof reply === "string") await requests.request(reply, "+ACK");
        else await m.ackAck();
      } finally {
        acked(m.info.stream);
      }
    },
    // Naks and progress acks get no reply from the server; a flush at least makes sure the
    // server has read them before the caller reports success.
    nak: async (delayMs) => {
      m.nak(delayMs);
      await flush();
    },
    extend: async () => {
      m.working();
      await flush();
    },
  };
}

const SESSION_CONSUMER_PREFIX = "session-";

/** Consumer names allow few characters: a digest of the session id stands in for it. */
function sessionConsumerName(sessionId: string): string {
  return `${SESSION_CONSUMER_PREFIX}${createHash("sha256").update(sessionId, "utf8").digest("hex").slice(0, 40)}`;
}

/** Whether a consumer of a message stream is a session's own (see openSessionConsumer). */
export function isSessionConsumerName(name: string): boolean {
  return name.startsWith(SESSION_CONSUMER_PREFIX);
}

function expectSetting(owner: string, name: string, actual: unknown, wanted: unknown): void {
  if (actual !== wanted) {
    throw new Error(
      `${owner}: JetStream kept ${name} = ${String(actual)}, not ${String(wanted)}; the nats-server is too old.`,
    );
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.status === 404;
}

function isNoMessageFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && /no message found/i.test(error.message);
}

function isAlreadyInUse(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === 10058;
}
