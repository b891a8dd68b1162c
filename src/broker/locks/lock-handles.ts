import type { ReceivedMessage } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import type { Delivery, MessageReader } from "../../store/message-streams.js";
import type { SessionOffer } from "../../store/session-index.js";
import type { VersionedSession } from "../../store/session-records.js";
import type { MessageLayout } from "../../store/subjects.js";

/*
 * The two kinds of lock this broker process hands out, as it keeps them: each refers to the
 * other (a message received in a session is locked by the session; a session lock knows the
 * messages in flight under it), so they are declared together.
 */

/** What a lock token settles: a delivery of the consumer, or a fetched deferred message. */
export type LockTarget =
  | { kind: "active"; delivery: Delivery }
  | { kind: "deferred"; copySequence: number; revision: number };

export interface MessageLock {
  token: string;
  /** Identity of the entity (its stream id) the message was delivered from. */
  entity: string;
  entityPath: string;
  lockedUntil: number;
  settled: boolean;
  target: LockTarget;
  /** The message as delivered, for dead-letter and defer copies. */
  message: ReceivedMessage;
  /** The session the message was received under; its lock is the message lock. */
  session: SessionHandle | undefined;
  /** Called once, when the lock ends by settlement or expiry (returns receive credit). */
  onEnd: (() => void) | undefined;
  timer: NodeJS.Timeout | undefined;
}

export type NewLock = Omit<MessageLock, "token" | "settled" | "timer">;

/** What is kept of a settled lock: enough to refuse a second settle with the right error. */
export type SettledLock = Pick<MessageLock, "token" | "entity" | "entityPath" | "session"> & {
  settled: true;
};

/** A session lock as this broker process knows it, with what hangs off it locally. */
export interface SessionHandle {
  /** Identity (stream id) of the entity. */
  entity: string;
  entityPath: string;
  streamId: string;
  layout: MessageLayout;
  sessionId: string;
  /** The session's subject token, the key of its record. */
  token: string;
  lockToken: string;
  lockedUntil: number;
  /** The session's own consumer: its unsettled and new messages, in order. */
  reader: MessageReader;
  /** The accept-next offer this session was taken from, kept while it is held. */
  offer: SessionOffer | undefined;
  /**
   * The session has an unacked accept-next index entry: its kept offer, or one a Send
   * published while it was held (a named accept starts without).
   */
  indexed: boolean;
  /** Messages delivered through this process and not yet settled. */
  inflight: Set<MessageLock>;
  /** Sequence numbers settled since the record was last written (to drop their counts). */
  settled: number[];
  /** Aborted when the lock ends here (close, loss): receive streams on it stop. */
  ended: AbortController;
  /** The session record as this process last read or wrote it (saves a read per write). */
  known: VersionedSession | undefined;
  /** Bumped whenever the session's consumer is recreated: older deliveries are void. */
  generation: number;
  /** Stops the pull a receive stream is waiting on, so it moves to the new consumer. */
  interrupt: (() => void) | undefined;
  /** Called with deliveries a receive stream must drop (see MessagesRecalled). */
  onRecall: ((tokens: string[]) => void) | undefined;
}
