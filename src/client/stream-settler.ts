import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema } from "../../gen/ts/sessionbus/v1/error_detail_pb.js";
import type {
  MessagingService,
  SettleStreamRequestSchema,
  SettleStreamResponse,
} from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import type { CallOptions } from "./call-options.js";
import { toSessionBusError } from "./errors.js";
import { FramePipe } from "./frame-pipe.js";
import { RENEW_BEFORE_SECONDS } from "./sas-token.js";

type SettleFrame = MessageInitShape<typeof SettleStreamRequestSchema>;

/** A SettleStream with no frame waiting this long is half-closed (a new one opens on demand). */
const IDLE_CLOSE_MS = 2_000;
/**
 * Frames go to a new SettleStream once the current one is this old: its token (at least
 * five minutes from expiry when the stream opened) must not expire under a busy stream.
 */
const MAX_STREAM_AGE_MS = (RENEW_BEFORE_SECONDS - 60) * 1000;

/**
 * The SDK's settles go as frames of one SettleStream per client instead of a Settle call
 * each: the broker spends a fraction of a call on a frame. Cancellation and the deadline
 * apply to waiting for the answer; as with a cancelled call, the broker may still settle.
 */
export class StreamSettler {
  private readonly pipe: FramePipe<SettleFrame, SettleStreamResponse>;
  private readonly stop = new AbortController();

  constructor(
    messaging: Client<typeof MessagingService>,
    private readonly callTimeoutMs: number,
  ) {
    this.pipe = new FramePipe(
      (frames) => messaging.settleStream(frames, { signal: this.stop.signal }),
      IDLE_CLOSE_MS,
      MAX_STREAM_AGE_MS,
    );
  }

  async settle(request: SettleFrame, options: CallOptions | undefined): Promise<void> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    const timeoutMs = options?.timeoutMs ?? this.callTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const bounds = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
        timeoutMs,
      );
      onAbort = () => reject(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    let answer: SettleStreamResponse;
    try {
      answer = await Promise.race([this.pipe.frame(request), bounds]);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw toSessionBusError(error);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener("abort", onAbort);
    }
    const failure = answer.error;
    if (failure) {
      const details = failure.detail ? [{ desc: ErrorDetailSchema, value: failure.detail }] : [];
      throw toSessionBusError(new ConnectError(failure.message, failure.code, undefined, details));
    }
  }

  /** Ends the stream at once (the client is closing); waiting settles fail. */
  close(): void {
    this.stop.abort();
  }
}
