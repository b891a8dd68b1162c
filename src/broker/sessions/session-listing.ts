import type { Store } from "../../store/store.js";
import { sessionIdFromToken, sessionToken } from "../../store/subjects.js";
import { checkPageToken } from "../entities/entity-paging.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { InvalidArgumentError, NotSessionEntityError } from "../errors.js";
import { codePointLength } from "../limits/character-limits.js";
import { MAX_ID_LENGTH } from "../messages/message-validation.js";

export interface SessionSummary {
  sessionId: string;
  messageCount: number;
  lockedUntil: number | undefined;
  stateSize: number;
  stateChangedAt: number | undefined;
  lastActivity: number;
}

export interface SessionPage {
  sessions: SessionSummary[];
  nextPageToken: string;
}

const MAX_PAGE = 1000;

/**
 * Sessions with a message or a state, ordered by session id. Message counts come from one
 * stream-info request (per-subject counts); locks and state from the session records.
 */
export async function listSessions(
  store: Store,
  entity: ResolvedEntity,
  pageSize: number,
  pageToken: string,
  stateChangedAfter: number | undefined,
): Promise<SessionPage> {
  if (!entity.settings.requiresSession) throw new NotSessionEntityError(entity.address.path);
  if (pageSize < 0 || pageSize > MAX_PAGE) {
    throw new InvalidArgumentError("page_size", `page_size must be between 0 and ${MAX_PAGE}.`, {
      entityPath: entity.address.path,
    });
  }
  checkPageToken(pageToken, { entityPath: entity.address.path });
  const after = pageToken === "" ? undefined : sessionAfter(entity, pageToken);
  const [counts, recorded] = await Promise.all([
    store.messages.sessionMessageCounts(entity.layout),
    store.sessions.tokens(entity.streamId),
  ]);
  const tokens = new Set([...counts.keys(), ...recorded]);
  const candidates = [...tokens]
    .map((token) => ({ token, sessionId: sessionIdFromToken(token) }))
    .filter(({ sessionId }) => after === undefined || sessionId > after)
    .sort((a, b) => (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0));
  const size = pageSize || 100;
  const found: SessionSummary[] = [];
  const now = Date.now();
  // Read records a slice at a time until the page is full.
  for (let i = 0; i < candidates.length && found.length < size; i += size) {
    const slice = candidates.slice(i, i + size);
    const records = await Promise.all(
      slice.map(({ token }) => store.sessions.read(entity.streamId, token)),
    );
    slice.forEach(({ token, sessionId }, j) => {
      const { record } = records[j] as (typeof records)[number];
      const messageCount = counts.get(token) ?? 0;
      if (messageCount === 0 && !record.state) return;
      if (
        stateChangedAfter !== undefined &&
        !(record.state && record.state.changedAt > stateChangedAfter)
      )
        return;
      if (found.length >= size) return;
      found.push({
        sessionId,
        messageCount,
        lockedUntil: record.lock && record.lock.until > now ? record.lock.until : undefined,
        stateSize: record.state?.size ?? 0,
        stateChangedAt: record.state?.changedAt,
        lastActivity: record.lastActivity,
      });
    });
  }
  const last = found.at(-1);
  const more = last !== undefined && candidates.some(({ sessionId }) => sessionId > last.sessionId);
  return { sessions: found, nextPageToken: more && last ? sessionToken(last.sessionId) : "" };
}

/** The session id a page token names: one next_page_token returned, else INVALID_ARGUMENT. */
function sessionAfter(entity: ResolvedEntity, pageToken: string): string {
  const path = entity.address.path;
  const sessionId = sessionIdFromToken(pageToken);
  // Tokens name a session id of at most 128 characters, as every one returned does.
  if (
    !pageToken.startsWith("s") ||
    sessionToken(sessionId) !== pageToken ||
    codePointLength(sessionId) > MAX_ID_LENGTH
  ) {
    throw new InvalidArgumentError(
      "page_token",
      "page_token is not a next_page_token of ListSessions; pass it as received, or empty for the first page.",
      { entityPath: path },
    );
  }
  return sessionId;
}
