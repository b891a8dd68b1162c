/**
 * The grpc-js client for the session API (AcceptSession, RenewSessionLock, CloseSession,
 * Get/SetSessionState, ListSessions, and ReceiveStream / Settle / ReceiveDeferred / Peek
 * with their session fields). It builds on grpc-client.ts (its proto loading, unary calls
 * and buffered ReceiveStream), so it too shares no code with the broker; its
 * ReceiveStream handle keeps the `recalled` events, and it is usually given channel
 * options (a 100 MiB session state needs 'grpc.max_receive_message_length': -1).
 */
import type * as grpc from "@grpc/grpc-js";
import {
  BufferedReceiveStream,
  type ClientOptions,
  type DurationInput,
  GrpcClient,
  millis,
  type Queue,
  type QueuePropertiesInput,
  type ReceivedMessage,
  type ReceiveMode,
  type ReceiveStreamResponse,
  STREAM_WAIT_MS,
  type Timestamp,
} from "./grpc-client.js";

// ---------------------------------------------------------------------------------------
// Shapes (proto-loader: camelCase, int64 as strings, enums as names).

/** SessionLockRef: the session and the token AcceptSession gave. */
export interface SessionRef {
  sessionId: string;
  lockToken: string;
}

/** SessionLock as AcceptSession returns it. */
export interface SessionLock extends SessionRef {
  lockedUntil: Timestamp | null;
}

export interface SessionInfo {
  sessionId: string;
  messageCount: string;
  locked: boolean;
  lockedUntil: Timestamp | null;
  stateSizeBytes: string;
  lastActivity: Timestamp | null;
}

export type SessionDisposition =
  | "DISPOSITION_COMPLETE"
  | "DISPOSITION_ABANDON"
  | "DISPOSITION_DEAD_LETTER"
  | "DISPOSITION_DEFER";

export interface SessionSettleRequest {
  entityPath: string;
  lockTokens: string[];
  disposition: SessionDisposition;
  deadLetterReason?: string;
  deadLetterDescription?: string;
  /** Unset on purpose in misuse tests and on the dead-letter queue (no sessions there). */
  session?: SessionRef;
}

export interface SessionReceiveRequest {
  entityPath: string;
  session?: SessionRef;
  receiveMode?: ReceiveMode;
  prefetch?: number;
  maxMessages?: number;
  maxWait?: DurationInput;
}

/** One event of a ReceiveStream. */
export type ReceiveEvent =
  | { kind: "message"; message: ReceivedMessage }
  | { kind: "recalled"; lockTokens: string[] };

export type SessionClientOptions = ClientOptions;

/** Channel options for calls carrying up to 100 MiB and more (grpc-js caps receive at 4 MiB). */
export const UNLIMITED_MESSAGE_SIZE: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": -1,
  "grpc.max_send_message_length": -1,
};

/** The client of the session tests: the session RPCs and the session fields of the others. */
export class SessionClient extends GrpcClient {
  // AdminService

  /** A queue with requires_session (and the other properties given). */
  createSessionQueue(name: string, properties: QueuePropertiesInput = {}): Promise<Queue> {
    return this.createQueue(name, { ...properties, requiresSession: true });
  }

  // MessagingService: messages

  /** Up to 250 messages from `from` on; of one session when `sessionId` is given. */
  peek(
    entityPath: string,
    options: { from?: number | string; max?: number; sessionId?: string } = {},
  ): Promise<ReceivedMessage[]> {
    return this.peekPage(entityPath, options.from ?? 0, options.max ?? 250, options.sessionId);
  }

  /** Every message (of the entity, or of one session), page by page. */
  peekAll(entityPath: string, sessionId?: string): Promise<ReceivedMessage[]> {
    return this.peekEvery(entityPath, sessionId);
  }

  receiveStream(request: SessionReceiveRequest): SessionReceiveStream {
    return new SessionReceiveStream(this.openReceiveStream(request));
  }

  async settle(request: SessionSettleRequest): Promise<void> {
    await this.unary("MessagingService", "Settle", request);
  }

  complete(entityPath: string, session: SessionRef | undefined, ...lockTokens: string[]) {
    return this.settle({ entityPath, session, lockTokens, disposition: "DISPOSITION_COMPLETE" });
  }

  abandon(entityPath: string, session: SessionRef | undefined, ...lockTokens: string[]) {
    return this.settle({ entityPath, session, lockTokens, disposition: "DISPOSITION_ABANDON" });
  }

  defer(entityPath: string, session: SessionRef | undefined, ...lockTokens: string[]) {
    return this.settle({ entityPath, session, lockTokens, disposition: "DISPOSITION_DEFER" });
  }

  async receiveDeferred(
    entityPath: string,
    sequenceNumbers: (number | string)[],
    session?: SessionRef,
  ): Promise<ReceivedMessage[]> {
    const response = await this.unary<{ messages: ReceivedMessage[] }>(
      "MessagingService",
      "ReceiveDeferred",
      { entityPath, sequenceNumbers, session },
    );
    return response.messages;
  }

  // MessagingService: sessions

  /**
   * AcceptSession: the named session, or (sessionId undefined) the next available one
   * within `maxWaitMs`; undefined when accept-next found none.
   */
  async acceptSession(
    entityPath: string,
    sessionId: string | undefined,
    maxWaitMs?: number,
  ): Promise<SessionLock | undefined> {
    const response = await this.unary<{ session: SessionLock | null }>(
      "MessagingService",
      "AcceptSession",
      {
        entityPath,
        sessionId,
        maxWait: maxWaitMs === undefined ? undefined : millis(maxWaitMs),
      },
    );
    return response.session ?? undefined;
  }

  /** Accepts the named session; fails when the broker returns no lock. */
  async acceptNamed(entityPath: string, sessionId: string): Promise<SessionLock> {
    const lock = await this.acceptSession(entityPath, sessionId);
    if (!lock) throw new Error(`AcceptSession of "${sessionId}" returned no session`);
    return lock;
  }

  async renewSessionLock(entityPath: string, session: SessionRef): Promise<Timestamp> {
    const response = await this.unary<{ lockedUntil: Timestamp | null }>(
      "MessagingService",
      "RenewSessionLock",
      { entityPath, session },
    );
    if (!response.lockedUntil) throw new Error("RenewSessionLock returned no locked_until");
    return response.lockedUntil;
  }

  async closeSession(entityPath: string, session: SessionRef): Promise<void> {
    await this.unary("MessagingService", "CloseSession", { entityPath, session });
  }

  /** The state, or undefined when the session has none. */
  async getSessionState(entityPath: string, session: SessionRef): Promise<Buffer | undefined> {
    const response = await this.unary<{ state?: Buffer | null }>(
      "MessagingService",
      "GetSessionState",
      { entityPath, session },
    );
    return response.state ?? undefined;
  }

  /** Replaces the state; undefined clears it. */
  async setSessionState(
    entityPath: string,
    session: SessionRef,
    state: Buffer | undefined,
  ): Promise<void> {
    await this.unary("MessagingService", "SetSessionState", { entityPath, session, state });
  }

  listSessions(
    entityPath: string,
    pageSize: number,
    pageToken = "",
  ): Promise<{ sessions: SessionInfo[]; nextPageToken: string }> {
    return this.unary("MessagingService", "ListSessions", { entityPath, pageSize, pageToken });
  }

  /** Every listed session, page by page; also returns how many pages it took. */
  async listAllSessions(
    entityPath: string,
    pageSize = 100,
  ): Promise<{ sessions: SessionInfo[]; pages: number }> {
    const sessions: SessionInfo[] = [];
    let token = "";
    let pages = 0;
    for (;;) {
      const page = await this.listSessions(entityPath, pageSize, token);
      pages++;
      sessions.push(...page.sessions);
      if (page.nextPageToken === "") return { sessions, pages };
      if (pages > 10_000) throw new Error("ListSessions does not end");
      token = page.nextPageToken;
    }
  }
}

/**
 * One ReceiveStream call, buffered: events (messages and recalls) wait in order until read,
 * and every read fails instead of hanging when nothing comes within its bound.
 */
export class SessionReceiveStream extends BufferedReceiveStream<ReceiveEvent> {
  constructor(call: grpc.ClientReadableStream<ReceiveStreamResponse>) {
    super(call, ["an", "event"]);
  }

  protected itemOf(response: ReceiveStreamResponse): ReceiveEvent | undefined {
    if (response.event === "message" && response.message) {
      return { kind: "message", message: response.message };
    }
    if (response.event === "recalled") {
      return { kind: "recalled", lockTokens: response.recalled?.lockTokens ?? [] };
    }
    return undefined;
  }

  /** The next event, or undefined when the stream ended OK; throws the call's error. */
  event(timeoutMs = STREAM_WAIT_MS): Promise<ReceiveEvent | undefined> {
    return this.nextItem(timeoutMs);
  }

  /** The next event, which must be a message. */
  async next(timeoutMs = STREAM_WAIT_MS): Promise<ReceivedMessage> {
    const event = await this.event(timeoutMs);
    if (event === undefined) throw new Error("the stream ended where a message was expected");
    if (event.kind !== "message") {
      throw new Error(`a recalled event (${event.lockTokens.length} tokens) came, not a message`);
    }
    return event.message;
  }

  /** Exactly `count` messages, with no recalled event among them. */
  async take(count: number, timeoutMs = STREAM_WAIT_MS): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + timeoutMs;
    const taken: ReceivedMessage[] = [];
    while (taken.length < count) taken.push(await this.next(Math.max(1, deadline - Date.now())));
    return taken;
  }

  /**
   * What a client does after an abandon: skips messages until the recalled event. Returns
   * the skipped messages and the recalled lock tokens.
   */
  async untilRecalled(
    timeoutMs = STREAM_WAIT_MS,
  ): Promise<{ skipped: ReceivedMessage[]; lockTokens: string[] }> {
    const deadline = Date.now() + timeoutMs;
    const skipped: ReceivedMessage[] = [];
    const seen = () =>
      skipped.length === 0
        ? "nothing"
        : skipped
            .map((m) => `sequence ${m.sequenceNumber} (delivery_count ${m.deliveryCount})`)
            .join(", ");
    for (;;) {
      let event: ReceiveEvent | undefined;
      try {
        event = await this.event(Math.max(1, deadline - Date.now()));
      } catch (error) {
        if ((error as Partial<grpc.ServiceError>).code !== undefined) throw error;
        throw new Error(
          `no recalled event within ${timeoutMs} ms after the abandon; skipped meanwhile: ${seen()}`,
          { cause: error },
        );
      }
      if (event === undefined) throw new Error("the stream ended before the recalled event");
      if (event.kind === "recalled") return { skipped, lockTokens: event.lockTokens };
      skipped.push(event.message);
    }
  }
}
