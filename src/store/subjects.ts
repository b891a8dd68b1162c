import { deadLetterStreamId, type EntityRecord } from "./entity-record.js";

/**
 * Names of everything sessionbus keeps in JetStream. Each queue, subscription and
 * dead-letter queue has a stream `SB_<streamId>` holding the subjects `sb.<streamId>.>`:
 *   sb.<streamId>.m.n            active messages without a session
 *   sb.<streamId>.m.s<base64url> active messages of one session (base64url of the id)
 *   sb.<streamId>.d.<sequence>   deferred messages, by their original sequence number
 *   sb.<streamId>.sch.<token>    scheduled messages (session token as for active ones)
 * A topic has a stream `SBT_<topicId>`; a message sent to it is stored once, as
 *   sbt.<topicId>.m.<session token>.<v0>.<v1>…<vN-1>.e
 * where v<k> is 1 when the subscription in slot k takes the message and 0 when not. Each
 * subscription's stream sources the topic stream filtered on its slot, so JetStream does
 * the fan-out, and the copies keep the topic's subject (2.9 has no subject transforms).
 *   sbt.<topicId>.d               duplicate-detection markers, copied nowhere
 * A topic also has an `SB_<topicId>` stream, holding only its scheduled messages until
 * they are due.
 */

export function streamName(streamId: string): string {
  return `SB_${streamId}`;
}

/** The stream id in a stream name made by `streamName`. */
export function streamIdOf(name: string): string {
  return name.slice("SB_".length);
}

export function streamSubjects(streamId: string): string {
  return `sb.${streamId}.>`;
}

/** Subject token of a session; `n` stands for "no session", distinct from the "" id. */
export function sessionToken(sessionId: string | undefined): string {
  return sessionId === undefined ? "n" : `s${Buffer.from(sessionId, "utf8").toString("base64url")}`;
}

export function activeSubject(streamId: string, sessionId: string | undefined): string {
  return `sb.${streamId}.m.${sessionToken(sessionId)}`;
}

/**
 * Where a stream's active messages are: under its own `sb.<streamId>.m` (queues, dead-letter
 * queues) or, for a subscription, under its topic's `sbt.<topicId>.m` with the slot vector
 * after the session token.
 */
export interface MessageLayout {
  streamId: string;
  /** Subject prefix before the session token. */
  prefix: string;
  /** True for copies sourced from a topic: tokens follow the session token. */
  sourced: boolean;
}

export function queueLayout(streamId: string): MessageLayout {
  return { streamId, prefix: `sb.${streamId}.m`, sourced: false };
}

export function subscriptionLayout(streamId: string, topicStreamId: string): MessageLayout {
  return { streamId, prefix: `sbt.${topicStreamId}.m`, sourced: true };
}

/** Filter of one session's active messages. */
export function sessionFilter(layout: MessageLayout, sessionId: string | undefined): string {
  const subject = `${layout.prefix}.${sessionToken(sessionId)}`;
  return layout.sourced ? `${subject}.>` : subject;
}

/** Filter of every active message. */
export function allActiveSubjects(layout: MessageLayout): string {
  return `${layout.prefix}.>`;
}

/**
 * Filter of the shared consumer of session-less receivers: a queue stores their messages
 * under `n`; a session-less subscription delivers every copy, session id or not.
 */
export function plainFilter(layout: MessageLayout, requiresSession: boolean): string {
  if (!layout.sourced) return sessionFilter(layout, undefined);
  return requiresSession ? sessionFilter(layout, undefined) : allActiveSubjects(layout);
}

/** The session token of an active subject (the fourth token in both layouts). */
export function tokenOfSubject(subject: string): string {
  return subject.split(".", 4)[3] ?? "";
}

export function topicStreamName(topicStreamId: string): string {
  return `SBT_${topicStreamId}`;
}

export function topicSubjects(topicStreamId: string): string {
  return `sbt.${topicStreamId}.>`;
}

/** The subject a topic message is stored under, given which slots take it. */
export function topicSubject(
  topicStreamId: string,
  sessionId: string | undefined,
  slots: boolean[],
): string {
  const vector = slots.map((taken) => (taken ? "1" : "0")).join(".");
  return `sbt.${topicStreamId}.m.${sessionToken(sessionId)}.${vector ? `${vector}.` : ""}e`;
}

/**
 * Where a topic's duplicate detection records a message_id (an empty message): outside
 * `sbt.<topicId>.m`, so no subscription copies it.
 */
export function topicMarkerSubject(topicStreamId: string): string {
  return `sbt.${topicStreamId}.d`;
}

/** What a subscription in `slot` sources from its topic: copies whose slot token is 1. */
export function slotFilter(topicStreamId: string, slot: number): string {
  return `sbt.${topicStreamId}.m.*.${"*.".repeat(slot)}1.>`;
}

export function deferredSubject(streamId: string, sequence: number): string {
  return `sb.${streamId}.d.${sequence}`;
}

export function allDeferredSubjects(streamId: string): string {
  return `sb.${streamId}.d.>`;
}

/** Scheduled messages wait here: no consumer matches, so nothing delivers them early. */
export function scheduledSubject(streamId: string, sessionId: string | undefined): string {
  return `sb.${streamId}.sch.${sessionToken(sessionId)}`;
}

export function allScheduledSubjects(streamId: string): string {
  return `sb.${streamId}.sch.>`;
}

/**
 * One broker-wide stream of durable timers, one per scheduled message, on the subject
 * `sbtimer.<streamId>`; the broker processes share its one consumer.
 */
export const TIMER_STREAM = "SB_TIMERS";
export const TIMER_CONSUMER = "schedulers";

export function timerSubject(streamId: string): string {
  return `sbtimer.${streamId}`;
}

export const ALL_TIMER_SUBJECTS = "sbtimer.>";

/**
 * Every stream of an entity: a queue's or subscription's own, its dead-letter queue's and,
 * with sessions, its session index; a topic's stream and the one of its scheduled messages.
 */
export function entityStreamNames(record: EntityRecord): string[] {
  const { streamId } = record;
  if (record.kind === "topic") return [topicStreamName(streamId), streamName(streamId)];
  return [
    streamName(streamId),
    streamName(deadLetterStreamId(streamId)),
    ...(record.settings.requiresSession ? [sessionIndexStream(streamId)] : []),
  ];
}

/**
 * The stream the write probe (write-probe.ts) writes to: one subject per broker process,
 * `sbhealth.<probe id>`, keeping only its last write.
 */
export const HEALTH_STREAM = "SB_HEALTH";
export const ALL_HEALTH_SUBJECTS = "sbhealth.>";

export function healthSubject(probeId: string): string {
  return `sbhealth.${probeId}`;
}

/** The durable pull consumer that competing receivers of a session-less queue share. */
export const PLAIN_CONSUMER = "receivers";

export const ENTITY_BUCKET = "sessionbus-entities";
export const DEFERRED_LOCK_BUCKET = "sessionbus-deferred-locks";
/** Shared access authorization rules, one entry per rule. */
export const AUTHORIZATION_RULE_BUCKET = "sessionbus-authorization-rules";

/**
 * Index of sessions that may have work, for accept-next: one subject per session in the
 * stream `SBX_<streamId>`, keeping only its latest entry.
 */
export function sessionIndexStream(streamId: string): string {
  return `SBX_${streamId}`;
}

export function sessionIndexSubject(streamId: string, token: string): string {
  return `sbx.${streamId}.${token}`;
}

export function allSessionIndexSubjects(streamId: string): string {
  return `sbx.${streamId}.*`;
}

/** The durable pull consumer accept-next callers share to find available sessions. */
export const ACCEPT_CONSUMER = "acceptors";

export const SESSION_BUCKET = "sessionbus-sessions";
export const SESSION_STATE_BUCKET = "sessionbus-session-state";

/** Session id back from its subject token (`s<base64url>`). */
export function sessionIdFromToken(token: string): string {
  return Buffer.from(token.slice(1), "base64url").toString("utf8");
}
