import type { MessageReader } from "../../store/message-streams.js";
import type { SessionOffer } from "../../store/session-index.js";
import type { VersionedSession } from "../../store/session-records.js";
import type { MessageLayout } from "../../store/subjects.js";
import type { MessageLock } from "./message-locks.js";

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
