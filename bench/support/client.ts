/**
 * The benchmark's gRPC side: Connect clients over the gRPC protocol (HTTP/2, h2c) with the
 * generated code, and the small helpers every scenario shares.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { AdminService } from "../../gen/ts/sessionbus/v1/admin_service_pb.js";
import type { MessageSchema } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { Disposition, MessagingService } from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { benchTokenInterceptor } from "./credentials.js";

/** Room for a 10 MiB session state plus framing. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Bound of every unary call: a hang shows up as DEADLINE_EXCEEDED, not as a stuck run. */
export const CALL_TIMEOUT_MS = 30_000;
/** Body size of every benchmark message. */
export const BODY_BYTES = 1024;

export type MessagingClient = Client<typeof MessagingService>;
export type MessageInit = MessageInitShape<typeof MessageSchema>;

export interface SessionRef {
  sessionId: string;
  lockToken: string;
}

export interface BenchClient {
  admin: Client<typeof AdminService>;
  messaging: MessagingClient;
  /** Closes the HTTP/2 connection (and every stream on it). */
  close(): void;
}

/** One client = one HTTP/2 connection to the broker. */
export function createBenchClient(baseUrl: string): BenchClient {
  const sessionManager = new Http2SessionManager(baseUrl);
  const transport = createGrpcTransport({
    baseUrl,
    sessionManager,
    readMaxBytes: MAX_MESSAGE_BYTES,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    // Without this the client accepts gzip and br, and the broker compresses every
    // response of 1 KiB or more (each delivered message): costs of the client's choosing.
    acceptCompression: [],
    interceptors: [benchTokenInterceptor],
  });
  return {
    admin: createClient(AdminService, transport),
    messaging: createClient(MessagingService, transport),
    close: () => sessionManager.abort(),
  };
}

export interface QueueOptions {
  /** @default 256 KiB (the broker's default) */
  maxSessionStateBytes?: number;
  /** Session and message lock duration. @default 60 s (the broker's default); at most 5 min */
  lockDurationMs?: number;
}

/** How often a queue's creation is tried when the broker answers UNAVAILABLE. */
const CREATE_TRIES = 3;
const CREATE_RETRY_PAUSE_MS = 1_000;

/**
 * Creates a session-enabled queue with a name unique to this run. UNAVAILABLE ("retry
 * shortly") is retried, as a client should: a broker with 3 replicas just started answered
 * it once (docs/performance.md, Replication); each retry is reported through `onProblem`.
 */
export async function createSessionQueue(
  client: BenchClient,
  prefix: string,
  onProblem: (line: string) => void,
  options: QueueOptions = {},
): Promise<string> {
  const name = `bench-${prefix}-${Date.now().toString(36)}`;
  const request = {
    name,
    properties: {
      requiresSession: true,
      ...(options.lockDurationMs === undefined
        ? {}
        : { lockDuration: durationFromMs(options.lockDurationMs) }),
      ...(options.maxSessionStateBytes === undefined
        ? {}
        : { maxSessionStateSizeBytes: BigInt(options.maxSessionStateBytes) }),
    },
  };
  for (let attempt = 1; ; attempt++) {
    try {
      await client.admin.createQueue(request, { timeoutMs: CALL_TIMEOUT_MS });
      return name;
    } catch (error) {
      const retriable = ConnectError.from(error).code === Code.Unavailable;
      if (!retriable || attempt === CREATE_TRIES) throw error;
      onProblem(`${describeError(`CreateQueue ${name}`, error)}; tried again`);
      await new Promise((resolve) => setTimeout(resolve, CREATE_RETRY_PAUSE_MS));
    }
  }
}

/** Deletes a queue the benchmark created; a failure is reported, not thrown. */
export async function deleteQueue(
  client: BenchClient,
  name: string,
  onError: (line: string) => void,
): Promise<void> {
  try {
    await client.admin.deleteQueue({ name }, { timeoutMs: CALL_TIMEOUT_MS });
  } catch (error) {
    onError(describeError(`DeleteQueue ${name}`, error));
  }
}

/**
 * A 1 KiB body whose first 8 bytes carry `stampMs` (a performance.now() reading of this
 * process), so a receiver can tell how long the message took.
 */
export function stampedBody(stampMs: number): Uint8Array {
  const body = new Uint8Array(BODY_BYTES);
  new DataView(body.buffer).setFloat64(0, stampMs);
  return body;
}

export function stampOf(body: Uint8Array | undefined): number {
  if (body === undefined || body.length < 8) return Number.NaN;
  return new DataView(body.buffer, body.byteOffset, body.byteLength).getFloat64(0);
}

export const maxWait = (ms: number) => durationFromMs(ms);

/** Accepts a session by name, or throws. */
export async function acceptNamed(
  messaging: MessagingClient,
  entityPath: string,
  sessionId: string,
  signal?: AbortSignal,
): Promise<SessionRef> {
  const { session } = await messaging.acceptSession(
    { entityPath, sessionId },
    { timeoutMs: CALL_TIMEOUT_MS, ...(signal ? { signal } : {}) },
  );
  if (session === undefined) throw new Error(`AcceptSession of "${sessionId}" returned no lock`);
  return { sessionId: session.sessionId, lockToken: session.lockToken };
}

/** Accept-next: the lock, or undefined when no session turned up within `waitMs`. */
export async function acceptNext(
  messaging: MessagingClient,
  entityPath: string,
  waitMs: number,
  signal: AbortSignal,
): Promise<SessionRef | undefined> {
  const { session } = await messaging.acceptSession(
    { entityPath, maxWait: maxWait(waitMs) },
    { timeoutMs: waitMs + CALL_TIMEOUT_MS, signal },
  );
  return session && { sessionId: session.sessionId, lockToken: session.lockToken };
}

export async function closeSession(
  messaging: MessagingClient,
  entityPath: string,
  session: SessionRef,
): Promise<void> {
  await messaging.closeSession({ entityPath, session }, { timeoutMs: CALL_TIMEOUT_MS });
}

/** Where a Completer sends its settles: a SettleStream (see frame-pipe.ts), if any. */
export interface SettleChannel {
  settle(request: {
    entityPath: string;
    lockTokens: string[];
    disposition: Disposition;
    session: SessionRef;
  }): Promise<void>;
}

/**
 * Completes lock tokens of one session in batches: the tokens added during one turn of
 * the event loop go out together in one Settle call (or one SettleStream frame).
 */
export class Completer {
  private pending: string[] = [];
  private scheduled = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly messaging: MessagingClient,
    private readonly entityPath: string,
    private readonly session: SessionRef,
    /** Called per accepted Settle with the lock tokens it completed. */
    private readonly onCompleted: (count: number, lockTokens: string[]) => void,
    private readonly onError: (what: string, error: unknown) => void,
    private readonly channel?: SettleChannel,
  ) {}

  add(lockToken: string): void {
    this.pending.push(lockToken);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Resolves once every token added so far has been settled (or failed). */
  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const lockTokens = this.pending;
    this.pending = [];
    const request = {
      entityPath: this.entityPath,
      lockTokens,
      disposition: Disposition.COMPLETE,
      session: this.session,
    };
    const settled = (
      this.channel
        ? this.channel.settle(request)
        : this.messaging.settle(request, { timeoutMs: CALL_TIMEOUT_MS }).then(() => undefined)
    )
      .then(
        () => this.onCompleted(lockTokens.length, lockTokens),
        (error: unknown) => this.onError("Settle", error),
      )
      .finally(() => this.inFlight.delete(settled));
    this.inFlight.add(settled);
  }
}

/** Runs `work(i)` for i in [0, count) with at most `concurrency` at once; stops on abort. */
export async function runPool(
  count: number,
  concurrency: number,
  signal: AbortSignal,
  work: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count && !signal.aborted) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** "Settle: FAILED_PRECONDITION session lock lost …" — short and groupable. */
export function describeError(what: string, error: unknown): string {
  const failure = ConnectError.from(error);
  return `${what}: ${Code[failure.code] ?? failure.code} ${failure.rawMessage}`.slice(0, 300);
}

export function isCanceled(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Canceled;
}
