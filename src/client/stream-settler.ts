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
import { BrokerRoute, routeValues } from "./failover/broker-route.js";
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
 *
 * With several brokers, a settlement must reach the broker that delivered its message (the
 * lock token is known there only): there is one SettleStream per broker connection, and a
 * frame goes to the one of its message's route.
 */
export class StreamSettler {
  private readonly pipes = new Map<string, FramePipe<SettleFrame, SettleStreamResponse>>();
  private readonly stop = new AbortController();

  constructor(
    private readonly messaging: Client<typeof MessagingService>,
    private readonly callTimeoutMs: number,
  ) {}

  /** The pipe to the route's broker connection (the only pipe, without a route). */
  private pipeFor(route: BrokerRoute | undefined): FramePipe<SettleFrame, SettleStreamResponse> {
    const key = route?.broker === undefined ? "" : `${route.broker}.${route.epoch}`;
    let pipe = this.pipes.get(key);
    if (pipe === undefined) {
      // A route of its own, tied to the same connection: it fails with it, not with others.
      let pinned: BrokerRoute | undefined;
      if (route?.broker !== undefined) {
        pinned = new BrokerRoute();
        pinned.tie(route.broker, route.epoch);
      }
      const options = {
        signal: this.stop.signal,
        ...(pinned === undefined ? {} : { contextValues: routeValues(pinned) }),
      };
      pipe = new FramePipe(
        (frames) => this.messaging.settleStream(frames, options),
        IDLE_CLOSE_MS,
        MAX_STREAM_AGE_MS,
      );
      this.pipes.set(key, pipe);
    }
    return pipe;
  }

  async settle(
    request: SettleFrame,
    options: CallOptions | undefined,
    route?: BrokerRoute,
  ): Promise<void> {
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
      answer = await Promise.race([this.pipeFor(route).frame(request), bounds]);
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
