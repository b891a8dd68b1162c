/**
 * Names of everything sessionbus keeps in JetStream. Each queue (and each dead-letter
 * queue) has a stream `SB_<streamId>` holding the subjects `sb.<streamId>.>`:
 *   sb.<streamId>.m.n            active messages without a session
 *   sb.<streamId>.m.s<base64url> active messages of one session (base64url of the id)
 *   sb.<streamId>.d.<sequence>   deferred messages, by their original sequence number
 *   sb.<streamId>.sch.<token>    scheduled messages (session token as for active ones)
 */

export function streamName(streamId: string): string {
  return `SB_${streamId}`;
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

export function allActiveSubjects(streamId: string): string {
  return `sb.${streamId}.m.>`;
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
 * `sbt.<streamId>`; the broker processes share its one consumer.
 */
export const TIMER_STREAM = "SB_TIMERS";
export const TIMER_CONSUMER = "schedulers";

export function timerSubject(streamId: string): string {
  return `sbt.${streamId}`;
}

export const ALL_TIMER_SUBJECTS = "sbt.>";

/** The durable pull consumer that competing receivers of a session-less queue share. */
export const PLAIN_CONSUMER = "receivers";

export const ENTITY_BUCKET = "sessionbus-entities";
export const DEFERRED_LOCK_BUCKET = "sessionbus-deferred-locks";

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
