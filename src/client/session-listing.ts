/** Listing the sessions of a session-enabled entity. */
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type CallOptions, invoke, type Rpc } from "./rpc.js";

export interface ListSessionsOptions extends CallOptions {
  /** Sessions fetched per call; at most 1000. @default 100 (the broker's) */
  pageSize?: number | undefined;
  /** Only sessions whose state changed after this time. @default every session */
  stateChangedAfter?: Date | undefined;
}

/** A session with a receivable message or a state. */
export interface SessionInfo {
  sessionId: string;
  /** Messages stored in the session (active and locked). */
  messageCount: number;
  locked: boolean;
  lockedUntil: Date | undefined;
  stateSizeBytes: number;
  /** Last accept, state change or lock change. */
  lastActivity: Date | undefined;
}

/** Every session in order of session id, fetched page by page as iterated. */
export async function* listSessions(
  rpc: Rpc,
  entityPath: string,
  options?: ListSessionsOptions,
): AsyncGenerator<SessionInfo> {
  const after = options?.stateChangedAfter;
  let pageToken = "";
  do {
    const token = pageToken;
    const page = await invoke(rpc, options, (call) =>
      rpc.messaging.listSessions(
        {
          entityPath,
          pageSize: options?.pageSize ?? 0,
          pageToken: token,
          stateChangedAfter: after ? timestampFromDate(after) : undefined,
        },
        call,
      ),
    );
    for (const s of page.sessions) {
      yield {
        sessionId: s.sessionId,
        messageCount: Number(s.messageCount),
        locked: s.locked,
        lockedUntil: s.lockedUntil ? timestampDate(s.lockedUntil) : undefined,
        stateSizeBytes: Number(s.stateSizeBytes),
        lastActivity: s.lastActivity ? timestampDate(s.lastActivity) : undefined,
      };
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
}
