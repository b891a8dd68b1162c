/**
 * A grpc-js client for the session API (AcceptSession, RenewSessionLock, CloseSession,
 * Get/SetSessionState, ListSessions, and ReceiveStream / Settle / ReceiveDeferred / Peek
 * with their session fields). Like grpc-client.ts it reads the .proto files in proto/ at
 * run time and shares no code with the broker; unlike SessionbusClient it takes channel
 * options (a 100 MiB session state needs 'grpc.max_receive_message_length': -1) and its
 * ReceiveStream handle keeps the `recalled` events.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  type DurationInput,
  type MessageInput,
  millis,
  type Queue,
  type QueuePropertiesInput,
  type ReceivedMessage,
  type ReceiveMode,
  type SendResult,
  type Timestamp,
  within,
} from "./grpc-client.js";

const protoDir = fileURLToPath(new URL("../../proto", import.meta.url));

/** How long a unary call may take before it fails with DEADLINE_EXCEEDED. */
const CALL_DEADLINE_MS = 30_000;
/** Default bound of a wait for a stream event. */
const STREAM_WAIT_MS = 15_000;

const packageDefinition = protoLoader.loadSync(
  ["sessionbus/v1/admin_service.proto", "sessionbus/v1/messaging_service.proto"],
  {
    includeDirs: [protoDir],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  },
);

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

interface ReceiveStreamResponse {
  event?: "message" | "recalled";
  message?: ReceivedMessage | null;
  recalled?: { lockTokens: string[] } | null;
}

export interface SessionClientOptions {
  /** grpc-js channel options, e.g. { "grpc.max_receive_message_length": -1 }. */
  channelOptions?: grpc.ChannelOptions;
  /** @default 30_000 */
  deadlineMs?: number;
}

/** Channel options for calls carrying up to 100 MiB and more (grpc-js caps receive at 4 MiB). */
export const UNLIMITED_MESSAGE_SIZE: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": -1,
  "grpc.max_send_message_length": -1,
};

// ---------------------------------------------------------------------------------------

interface MethodDefinition {
  path: string;
  requestSerialize: (value: object) => Buffer;
  responseDeserialize: (bytes: Buffer) => unknown;
}

function method(service: string, name: string): MethodDefinition {
  const definition = packageDefinition[`sessionbus.v1.${service}`];
  if (definition === undefined || "format" in definition) throw new Error(`no service ${service}`);
  const found = definition[name];
  if (found === undefined) throw new Error(`no method ${service}.${name}`);
  return found as unknown as MethodDefinition;
}

export class SessionClient {
  private readonly client: grpc.Client;
  private readonly deadlineMs: number;
  /** Queues this client created, for deleteCreatedQueues(). */
  readonly created = new Set<string>();

  constructor(address: string, options: SessionClientOptions = {}) {
    this.client = new grpc.Client(
      address.replace(/^https?:\/\//, "").replace(/\/$/, ""),
      grpc.credentials.createInsecure(),
      options.channelOptions ?? {},
    );
    this.deadlineMs = options.deadlineMs ?? CALL_DEADLINE_MS;
  }

  close(): void {
    this.client.close();
  }

  unary<Res>(service: string, name: string, request: object): Promise<Res> {
    const { path, requestSerialize, responseDeserialize } = method(service, name);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        path,
        requestSerialize,
        (bytes: Buffer) => responseDeserialize(bytes) as Res,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + this.deadlineMs },
        (error, response) => (error || response === undefined ? reject(error) : resolve(response)),
      );
    });
  }

  // AdminService

  async createQueue(name: string, properties?: QueuePropertiesInput): Promise<Queue> {
    const { queue } = await this.unary<{ queue: Queue | null }>("AdminService", "CreateQueue", {
      name,
      properties,
    });
    if (!queue) throw new Error("the response carries no queue");
    this.created.add(name);
    return queue;
  }

  /** A queue with requires_session (and the other properties given). */
  createSessionQueue(name: string, properties: QueuePropertiesInput = {}): Promise<Queue> {
    return this.createQueue(name, { ...properties, requiresSession: true });
  }

  /** Deletes the queues this client created; ones already gone are fine. */
  async deleteCreatedQueues(): Promise<void> {
    for (const name of [...this.created]) {
      try {
        await this.unary("AdminService", "DeleteQueue", { name });
      } catch (error) {
        if ((error as Partial<grpc.ServiceError>).code !== grpc.status.NOT_FOUND) throw error;
      }
      this.created.delete(name);
    }
  }

  // MessagingService: messages

  async send(entityPath: string, messages: MessageInput[]): Promise<SendResult[]> {
    const response = await this.unary<{ results: SendResult[] }>("MessagingService", "Send", {
      entityPath,
      messages,
    });
    return response.results;
  }

  /** Up to 250 messages from `from` on; of one session when `sessionId` is given. */
  async peek(
    entityPath: string,
    options: { from?: number | string; max?: number; sessionId?: string } = {},
  ): Promise<ReceivedMessage[]> {
    const response = await this.unary<{ messages: ReceivedMessage[] }>("MessagingService", "Peek", {
      entityPath,
      fromSequenceNumber: options.from ?? 0,
      maxMessages: options.max ?? 250,
      sessionId: options.sessionId,
    });
    return response.messages;
  }

  /** Every message (of the entity, or of one session), page by page. */
  async peekAll(entityPath: string, sessionId?: string): Promise<ReceivedMessage[]> {
    const all: ReceivedMessage[] = [];
    let from = 0n;
    for (;;) {
      const page = await this.peek(entityPath, { from: from.toString(), max: 250, sessionId });
      all.push(...page);
      const last = page.at(-1);
      if (last === undefined || page.length < 250) return all;
      from = BigInt(last.sequenceNumber) + 1n;
    }
  }

  receiveStream(request: SessionReceiveRequest): SessionReceiveStream {
    const { path, requestSerialize, responseDeserialize } = method(
      "MessagingService",
      "ReceiveStream",
    );
    const call = this.client.makeServerStreamRequest(
      path,
      requestSerialize,
      (bytes: Buffer) => responseDeserialize(bytes) as ReceiveStreamResponse,
      request,
      new grpc.Metadata(),
    );
    return new SessionReceiveStream(call);
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
export class SessionReceiveStream {
  /** The call's final status (OK, or the error's code), whenever it comes. */
  readonly status: Promise<grpc.StatusObject>;
  private readonly buffered: ReceiveEvent[] = [];
  private finished = false;
  private error: grpc.ServiceError | undefined;
  private wake: (() => void) | undefined;

  constructor(readonly call: grpc.ClientReadableStream<ReceiveStreamResponse>) {
    this.status = new Promise((resolve) => call.once("status", resolve));
    call.on("data", (response: ReceiveStreamResponse) => {
      if (response.event === "message" && response.message) {
        this.buffered.push({ kind: "message", message: response.message });
      } else if (response.event === "recalled") {
        this.buffered.push({ kind: "recalled", lockTokens: response.recalled?.lockTokens ?? [] });
      }
      this.notify();
    });
    call.on("end", () => {
      this.finished = true;
      this.notify();
    });
    call.on("error", (error: grpc.ServiceError) => {
      this.error = error;
      this.finished = true;
      this.notify();
    });
  }

  /** The next event, or undefined when the stream ended OK; throws the call's error. */
  async event(timeoutMs = STREAM_WAIT_MS): Promise<ReceiveEvent | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = this.buffered.shift();
      if (event !== undefined) return event;
      if (this.error) throw this.error;
      if (this.finished) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event or end of the stream within ${timeoutMs} ms`);
      await within(
        new Promise<void>((resolve) => {
          this.wake = resolve;
        }),
        left,
        "an event or the end of the stream",
      );
    }
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

  /** Every event until the stream ends (it must end by itself, e.g. through max_wait). */
  async rest(timeoutMs = STREAM_WAIT_MS): Promise<ReceiveEvent[]> {
    const deadline = Date.now() + timeoutMs;
    const rest: ReceiveEvent[] = [];
    for (;;) {
      const event = await this.event(Math.max(1, deadline - Date.now()));
      if (event === undefined) return rest;
      rest.push(event);
    }
  }

  /** Cancels the call (a no-op after it ended). */
  cancel(): void {
    this.call.cancel();
  }

  /** The final status, failing when it does not come within the bound. */
  finalStatus(timeoutMs = STREAM_WAIT_MS): Promise<grpc.StatusObject> {
    return within(this.status, timeoutMs, "the status of the ReceiveStream call");
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
