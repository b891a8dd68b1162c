/**
 * An independent sessionbus client for tests: @grpc/grpc-js with the message types read at
 * run time from the .proto files in proto/ by @grpc/proto-loader. It shares no code with the
 * broker (not gen/, not src/), so it checks the wire contract as any gRPC user sees it.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { rootToken } from "./test-credentials.js";

const protoDir = fileURLToPath(new URL("../../proto", import.meta.url));

/** How long a unary call may take before it fails with DEADLINE_EXCEEDED. */
const CALL_DEADLINE_MS = 30_000;
/** Default bound of a wait for a stream event. */
export const STREAM_WAIT_MS = 15_000;

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
// Shapes of the decoded messages (proto-loader: camelCase, int64 as strings, enums as names).

/** google.protobuf.Duration / Timestamp as written in a request. */
export interface DurationInput {
  seconds: number | string;
  nanos?: number;
}

/** google.protobuf.Timestamp / Duration as decoded from a response. */
export interface Timestamp {
  seconds: string;
  nanos: number;
}

export type PropertyValue =
  | { stringValue: string }
  | { intValue: string | number }
  | { doubleValue: number }
  | { boolValue: boolean }
  | { bytesValue: Buffer }
  | { timestampValue: DurationInput };

export interface MessageInput {
  messageId?: string;
  sessionId?: string;
  replyTo?: string;
  replyToSessionId?: string;
  correlationId?: string;
  subject?: string;
  contentType?: string;
  to?: string;
  timeToLive?: DurationInput;
  scheduledEnqueueTime?: DurationInput;
  applicationProperties?: Record<string, PropertyValue>;
  body?: Buffer | Uint8Array | string;
}

export interface Message {
  messageId: string;
  sessionId?: string;
  replyTo: string;
  replyToSessionId?: string;
  correlationId: string;
  subject: string;
  contentType: string;
  to: string;
  timeToLive: Timestamp | null;
  scheduledEnqueueTime: Timestamp | null;
  applicationProperties: Record<string, Record<string, unknown>>;
  body: Buffer;
}

export type MessageState =
  | "MESSAGE_STATE_UNSPECIFIED"
  | "MESSAGE_STATE_ACTIVE"
  | "MESSAGE_STATE_DEFERRED"
  | "MESSAGE_STATE_SCHEDULED";

export interface ReceivedMessage {
  message: Message | null;
  sequenceNumber: string;
  enqueuedTime: Timestamp | null;
  expiresAt: Timestamp | null;
  deliveryCount: number;
  lockToken: string;
  lockedUntil: Timestamp | null;
  state: MessageState;
  deadLetterReason: string;
  deadLetterDescription: string;
  deadLetterSource: string;
}

export interface QueuePropertiesInput {
  requiresSession?: boolean;
  lockDuration?: DurationInput;
  maxDeliveryCount?: number;
  defaultMessageTtl?: DurationInput;
  deadLetteringOnMessageExpiration?: boolean;
  maxMessageSizeBytes?: number | string;
  maxSessionStateSizeBytes?: number | string;
  requiresDuplicateDetection?: boolean;
  duplicateDetectionWindow?: DurationInput;
  maxSizeBytes?: number | string;
}

export interface QueueProperties {
  requiresSession?: boolean;
  lockDuration: Timestamp | null;
  maxDeliveryCount?: number;
  defaultMessageTtl: Timestamp | null;
  deadLetteringOnMessageExpiration?: boolean;
  maxMessageSizeBytes?: string;
  maxSessionStateSizeBytes?: string;
  requiresDuplicateDetection?: boolean;
  duplicateDetectionWindow: Timestamp | null;
  maxSizeBytes?: string;
}

export interface EntityRuntimeInfo {
  activeMessageCount: string;
  scheduledMessageCount: string;
  deferredMessageCount: string;
  deadLetterMessageCount: string;
  sessionCount: string;
  sizeBytes: string;
  createdAt: Timestamp | null;
  updatedAt: Timestamp | null;
  accessedAt: Timestamp | null;
}

export interface Queue {
  name: string;
  properties: QueueProperties | null;
  runtimeInfo: EntityRuntimeInfo | null;
}

export interface SendResult {
  sequenceNumber: string;
  messageId: string;
  duplicate: boolean;
}

export type ReceiveMode =
  | "RECEIVE_MODE_UNSPECIFIED"
  | "RECEIVE_MODE_PEEK_LOCK"
  | "RECEIVE_MODE_RECEIVE_AND_DELETE";

export interface ReceiveStreamRequest {
  entityPath: string;
  receiveMode?: ReceiveMode;
  prefetch?: number;
  maxMessages?: number;
  maxWait?: DurationInput;
}

export type Disposition =
  | "DISPOSITION_UNSPECIFIED"
  | "DISPOSITION_COMPLETE"
  | "DISPOSITION_ABANDON"
  | "DISPOSITION_DEAD_LETTER"
  | "DISPOSITION_DEFER";

export interface SettleRequest {
  entityPath: string;
  lockTokens: string[];
  disposition: Disposition;
  deadLetterReason?: string;
  deadLetterDescription?: string;
}

/** A ReceiveStream response: a message, or (session receivers) recalled lock tokens. */
export interface ReceiveStreamResponse {
  event?: "message" | "recalled";
  message?: ReceivedMessage | null;
  recalled?: { lockTokens: string[] } | null;
}

// ---------------------------------------------------------------------------------------
// Small helpers.

/** A Duration of whole seconds, for requests. */
export function seconds(s: number): DurationInput {
  return { seconds: s, nanos: 0 };
}

/** A Duration of `ms` milliseconds (rounded to whole ones), for requests. */
export function millis(ms: number): DurationInput {
  const whole = Math.max(0, Math.round(ms));
  return { seconds: Math.floor(whole / 1000), nanos: (whole % 1000) * 1e6 };
}

/** Milliseconds since the epoch of a decoded Timestamp (or length of a Duration). */
export function toMs(value: Timestamp | null | undefined): number {
  if (!value) throw new Error("expected a Timestamp, got none");
  return Number(value.seconds) * 1000 + Math.floor(value.nanos / 1e6);
}

/** The body of a received message as UTF-8 text. */
export function bodyText(received: ReceivedMessage): string {
  return received.message?.body.toString("utf8") ?? "";
}

/** A unique, valid queue name, so test files can share one nats-server in parallel. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Rejects with a clear message when `promise` does not settle within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The error a promise rejects with; fails when it resolves instead. */
export async function rejection(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

// ---------------------------------------------------------------------------------------
// Error details: grpc-status-details-bin holds a google.rpc.Status whose details are Any.

const statusRoot = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: "int32", id: 1 },
                message: { type: "string", id: 2 },
                details: { rule: "repeated", type: "google.protobuf.Any", id: 3 },
              },
            },
          },
        },
        protobuf: {
          nested: {
            Any: {
              fields: {
                type_url: { type: "string", id: 1 },
                value: { type: "bytes", id: 2 },
              },
            },
          },
        },
      },
    },
  },
});
const StatusType = statusRoot.lookupType("google.rpc.Status");

const errorDetailRoot = new protobuf.Root();
errorDetailRoot.resolvePath = (_origin, target) =>
  target.startsWith("/") ? target : `${protoDir}/${target}`;
errorDetailRoot.loadSync("sessionbus/v1/error_detail.proto", { keepCase: true });
const ErrorDetailType = errorDetailRoot.lookupType("sessionbus.v1.ErrorDetail");
const ERROR_DETAIL_TYPE_URL = "type.googleapis.com/sessionbus.v1.ErrorDetail";

export interface ErrorReason {
  /** The gRPC status code (grpc.status). */
  code: number;
  /** Its name, e.g. "NOT_FOUND", for readable test failures. */
  codeName: string;
  /** ErrorDetail.reason, or undefined when the status carries no ErrorDetail. */
  reason: string | undefined;
  field: string | undefined;
  entityPath: string | undefined;
  sessionId: string | undefined;
  /** ErrorDetail.position: where in `field`'s value a parse error is (0: not a parse error). */
  position: number | undefined;
  /** ErrorDetail.missing_right, for MISSING_RIGHT ("Manage", "Send" or "Listen"). */
  missingRight: string | undefined;
  message: string;
}

interface DecodedStatus {
  code?: number;
  message?: string;
  details?: { type_url?: string; value?: Uint8Array }[];
}

interface DecodedErrorDetail {
  reason?: string;
  field?: string;
  entity_path?: string;
  session_id?: string;
  position?: number;
  missing_right?: string;
}

/** Decodes the status code and the sessionbus.v1.ErrorDetail of a failed call. */
export function errorReason(error: unknown): ErrorReason {
  const failure = error as Partial<grpc.ServiceError>;
  if (typeof failure.code !== "number" || failure.metadata === undefined) {
    throw new Error(`not a gRPC error: ${String(error)}`, { cause: error });
  }
  const result: ErrorReason = {
    code: failure.code,
    codeName: grpc.status[failure.code] ?? String(failure.code),
    reason: undefined,
    field: undefined,
    entityPath: undefined,
    sessionId: undefined,
    position: undefined,
    missingRight: undefined,
    message: failure.details ?? "",
  };
  const [raw] = failure.metadata.get("grpc-status-details-bin");
  if (!(raw instanceof Buffer)) return result;
  const status = StatusType.toObject(StatusType.decode(raw)) as DecodedStatus;
  const any = status.details?.find((d) => d.type_url === ERROR_DETAIL_TYPE_URL);
  if (any?.value === undefined) return result;
  const detail = ErrorDetailType.toObject(ErrorDetailType.decode(any.value)) as DecodedErrorDetail;
  result.reason = detail.reason ?? "";
  result.field = detail.field ?? "";
  result.entityPath = detail.entity_path ?? "";
  result.sessionId = detail.session_id;
  result.position = detail.position ?? 0;
  result.missingRight = detail.missing_right ?? "";
  return result;
}

/** Awaits a call that must fail, and returns what its status says. */
export async function failure(promise: Promise<unknown>): Promise<ErrorReason> {
  return errorReason(await rejection(promise));
}

// ---------------------------------------------------------------------------------------
// The client.

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

/** "http://127.0.0.1:1234" or "127.0.0.1:1234" → the grpc-js target "127.0.0.1:1234". */
function target(address: string): string {
  return address.replace(/^https?:\/\//, "").replace(/\/$/, "");
}

export interface ClientOptions {
  /** grpc-js channel options, e.g. { "grpc.max_receive_message_length": -1 }. */
  channelOptions?: grpc.ChannelOptions;
  /** @default 30_000 */
  deadlineMs?: number;
  /** @default grpc.credentials.createInsecure() */
  credentials?: grpc.ChannelCredentials;
  /**
   * The `authorization` metadata of every call; null sends none.
   * @default a namespace token of the test root rule (test-credentials.ts)
   */
  token?: string | null;
}

/**
 * What every test client shares: the channel, unary calls, opening a ReceiveStream, and the
 * queue administration and sending the tests set up with. Subclasses add the rest.
 */
export class GrpcClient {
  private readonly client: grpc.Client;
  private readonly deadlineMs: number;
  private readonly token: string | null | undefined;
  /** Queues this client created, for deleteCreatedQueues(). */
  readonly created = new Set<string>();

  constructor(address: string, options: ClientOptions = {}) {
    this.client = new grpc.Client(
      target(address),
      options.credentials ?? grpc.credentials.createInsecure(),
      options.channelOptions ?? {},
    );
    this.deadlineMs = options.deadlineMs ?? CALL_DEADLINE_MS;
    this.token = options.token;
  }

  /** Metadata of a new call: the token, unless the client was made without one. */
  metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    const token = this.token === undefined ? rootToken() : this.token;
    if (token !== null) metadata.set("authorization", token);
    return metadata;
  }

  close(): void {
    this.client.close();
  }

  /** Any unary method, with a request as proto-loader takes it. */
  unary<Res>(service: string, name: string, request: object): Promise<Res> {
    const { path, requestSerialize, responseDeserialize } = method(service, name);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        path,
        requestSerialize,
        (bytes: Buffer) => responseDeserialize(bytes) as Res,
        request,
        this.metadata(),
        { deadline: Date.now() + this.deadlineMs },
        (error, response) => (error || response === undefined ? reject(error) : resolve(response)),
      );
    });
  }

  /**
   * A unary call with raw request bytes (e.g. bytes that are no valid protobuf), answered
   * with the raw response bytes.
   */
  rawUnary(path: string, request: Buffer, deadlineMs = this.deadlineMs): Promise<Buffer> {
    const identity = (bytes: Buffer) => bytes;
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        path,
        identity,
        identity,
        request,
        this.metadata(),
        { deadline: Date.now() + deadlineMs },
        (error, response) => (error || response === undefined ? reject(error) : resolve(response)),
      );
    });
  }

  /** Starts a ReceiveStream call; subclasses wrap it in their buffered handle. */
  protected openReceiveStream(request: object): grpc.ClientReadableStream<ReceiveStreamResponse> {
    const { path, requestSerialize, responseDeserialize } = method(
      "MessagingService",
      "ReceiveStream",
    );
    return this.client.makeServerStreamRequest(
      path,
      requestSerialize,
      (bytes: Buffer) => responseDeserialize(bytes) as ReceiveStreamResponse,
      request,
      this.metadata(),
    );
  }

  /** Starts a bidirectional call (SendStream, SettleStream). */
  openDuplex<Req extends object, Res>(
    service: string,
    name: string,
  ): grpc.ClientDuplexStream<Req, Res> {
    const { path, requestSerialize, responseDeserialize } = method(service, name);
    return this.client.makeBidiStreamRequest(
      path,
      requestSerialize,
      (bytes: Buffer) => responseDeserialize(bytes) as Res,
      this.metadata(),
    );
  }

  // AdminService

  async createQueue(name: string, properties?: QueuePropertiesInput): Promise<Queue> {
    const queue = this.queueOf(
      await this.unary("AdminService", "CreateQueue", { name, properties }),
    );
    this.created.add(name);
    return queue;
  }

  /**
   * Deletes the queues this client created (but those in `keep`); ones already gone are
   * fine. Tests share one nats-server, so they clean up after themselves.
   */
  async deleteCreatedQueues(keep: string[] = []): Promise<void> {
    for (const name of [...this.created]) {
      if (keep.includes(name)) continue;
      try {
        await this.deleteQueue(name);
      } catch (error) {
        if ((error as Partial<grpc.ServiceError>).code !== grpc.status.NOT_FOUND) throw error;
      }
      this.created.delete(name);
    }
  }

  async deleteQueue(name: string): Promise<void> {
    await this.unary("AdminService", "DeleteQueue", { name });
  }

  // MessagingService

  async send(entityPath: string, messages: MessageInput[]): Promise<SendResult[]> {
    const response = await this.unary<{ results: SendResult[] }>("MessagingService", "Send", {
      entityPath,
      messages,
    });
    return response.results;
  }

  /** One Peek page; of one session when `sessionId` is given. */
  protected async peekPage(
    entityPath: string,
    fromSequenceNumber: number | string,
    maxMessages: number,
    sessionId?: string,
  ): Promise<ReceivedMessage[]> {
    const response = await this.unary<{ messages: ReceivedMessage[] }>("MessagingService", "Peek", {
      entityPath,
      fromSequenceNumber,
      maxMessages,
      sessionId,
    });
    return response.messages;
  }

  /** Every message (of the entity, or of one session), page by page (250 each). */
  protected async peekEvery(entityPath: string, sessionId?: string): Promise<ReceivedMessage[]> {
    const all: ReceivedMessage[] = [];
    let from = 0n;
    for (;;) {
      const page = await this.peekPage(entityPath, from.toString(), 250, sessionId);
      all.push(...page);
      const last = page.at(-1);
      if (last === undefined || page.length < 250) return all;
      from = BigInt(last.sequenceNumber) + 1n;
    }
  }

  protected queueOf(response: unknown): Queue {
    const { queue } = response as { queue: Queue | null };
    if (!queue) throw new Error("the response carries no queue");
    return queue;
  }
}

/** The client of the queue tests: admin, messages, settlement and ReceiveStream. */
export class SessionbusClient extends GrpcClient {
  // AdminService

  async getQueue(name: string): Promise<Queue> {
    return this.queueOf(await this.unary("AdminService", "GetQueue", { name }));
  }

  listQueues(
    pageSize: number,
    pageToken = "",
  ): Promise<{ queues: Queue[]; nextPageToken: string }> {
    return this.unary("AdminService", "ListQueues", { pageSize, pageToken });
  }

  async updateQueue(name: string, properties: QueuePropertiesInput): Promise<Queue> {
    return this.queueOf(await this.unary("AdminService", "UpdateQueue", { name, properties }));
  }

  // MessagingService

  peek(
    entityPath: string,
    fromSequenceNumber: number | string = 0,
    maxMessages = 250,
  ): Promise<ReceivedMessage[]> {
    return this.peekPage(entityPath, fromSequenceNumber, maxMessages);
  }

  /** Every message of the entity, page by page (250 each) through from_sequence_number. */
  peekAll(entityPath: string): Promise<ReceivedMessage[]> {
    return this.peekEvery(entityPath);
  }

  async settle(request: SettleRequest): Promise<void> {
    await this.unary("MessagingService", "Settle", request);
  }

  complete(entityPath: string, ...lockTokens: string[]): Promise<void> {
    return this.settle({ entityPath, lockTokens, disposition: "DISPOSITION_COMPLETE" });
  }

  abandon(entityPath: string, ...lockTokens: string[]): Promise<void> {
    return this.settle({ entityPath, lockTokens, disposition: "DISPOSITION_ABANDON" });
  }

  defer(entityPath: string, ...lockTokens: string[]): Promise<void> {
    return this.settle({ entityPath, lockTokens, disposition: "DISPOSITION_DEFER" });
  }

  async renewMessageLock(entityPath: string, lockTokens: string[]): Promise<Timestamp[]> {
    const response = await this.unary<{ lockedUntil: Timestamp[] }>(
      "MessagingService",
      "RenewMessageLock",
      { entityPath, lockTokens },
    );
    return response.lockedUntil;
  }

  async receiveDeferred(
    entityPath: string,
    sequenceNumbers: (number | string)[],
  ): Promise<ReceivedMessage[]> {
    const response = await this.unary<{ messages: ReceivedMessage[] }>(
      "MessagingService",
      "ReceiveDeferred",
      { entityPath, sequenceNumbers },
    );
    return response.messages;
  }

  /** Opens a ReceiveStream; read it with the returned handle, cancel it when done. */
  receiveStream(request: ReceiveStreamRequest): ReceiveStream {
    return new ReceiveStream(this.openReceiveStream(request));
  }
}

/**
 * One ReceiveStream call, buffered: the items a subclass makes of its responses wait in
 * order until read, and every read fails instead of hanging when nothing comes within its
 * bound.
 */
export abstract class BufferedReceiveStream<Item> {
  /** The call's final status (OK, or the error's code), whenever it comes. */
  readonly status: Promise<grpc.StatusObject>;
  private readonly buffered: Item[] = [];
  private finished = false;
  private error: grpc.ServiceError | undefined;
  private wake: (() => void) | undefined;

  /** `noun` names an item in timeout messages: ["a", "message"] or ["an", "event"]. */
  constructor(
    readonly call: grpc.ClientReadableStream<ReceiveStreamResponse>,
    private readonly noun: readonly [article: string, name: string],
  ) {
    this.status = new Promise((resolve) => call.once("status", resolve));
    call.on("data", (response: ReceiveStreamResponse) => {
      const item = this.itemOf(response);
      if (item !== undefined) this.buffered.push(item);
      this.notify();
    });
    call.on("end", () => {
      this.finished = true;
      this.notify();
    });
    // Also what keeps an error from being unhandled when nobody reads the stream.
    call.on("error", (error: grpc.ServiceError) => {
      this.error = error;
      this.finished = true;
      this.notify();
    });
  }

  /** What to buffer of a response; undefined skips it. */
  protected abstract itemOf(response: ReceiveStreamResponse): Item | undefined;

  /** The next item, or undefined when the stream ended OK; throws the call's error. */
  protected async nextItem(timeoutMs: number): Promise<Item | undefined> {
    const [article, name] = this.noun;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const item = this.buffered.shift();
      if (item !== undefined) return item;
      if (this.error) throw this.error;
      if (this.finished) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${name} or end of the stream within ${timeoutMs} ms`);
      await within(
        new Promise<void>((resolve) => {
          this.wake = resolve;
        }),
        left,
        `${article} ${name} or the end of the stream`,
      );
    }
  }

  /** Every item until the stream ends (it must end by itself, e.g. through max_wait). */
  async rest(timeoutMs = STREAM_WAIT_MS): Promise<Item[]> {
    const deadline = Date.now() + timeoutMs;
    const rest: Item[] = [];
    for (;;) {
      const item = await this.nextItem(Math.max(1, deadline - Date.now()));
      if (item === undefined) return rest;
      rest.push(item);
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

/**
 * A plain ReceiveStream, buffered: messages wait in order until read with next(), take()
 * or rest(), each of which fails instead of hanging when nothing comes within its bound.
 */
export class ReceiveStream extends BufferedReceiveStream<ReceivedMessage> {
  constructor(call: grpc.ClientReadableStream<ReceiveStreamResponse>) {
    super(call, ["a", "message"]);
  }

  protected itemOf(response: ReceiveStreamResponse): ReceivedMessage | undefined {
    return response.message ?? undefined;
  }

  /** The next message, or undefined when the stream ended OK; throws the call's error. */
  next(timeoutMs = STREAM_WAIT_MS): Promise<ReceivedMessage | undefined> {
    return this.nextItem(timeoutMs);
  }

  /** Exactly `count` messages; fails when the stream ends first or they take too long. */
  async take(count: number, timeoutMs = STREAM_WAIT_MS): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + timeoutMs;
    const taken: ReceivedMessage[] = [];
    while (taken.length < count) {
      const message = await this.next(Math.max(1, deadline - Date.now()));
      if (message === undefined) {
        throw new Error(`the stream ended after ${taken.length} of ${count} messages`);
      }
      taken.push(message);
    }
    return taken;
  }
}
