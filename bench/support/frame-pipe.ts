/**
 * A SendStream or SettleStream call used like a unary method: call() writes one frame at
 * once and resolves with that frame's answer (the broker answers frames one to one, in
 * order), so many calls are in flight on one stream.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import type {
  FrameError,
  SendResult,
  SendStreamRequestSchema,
  SettleStreamRequestSchema,
} from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import type { MessagingClient } from "./client.js";

type SendFrame = MessageInitShape<typeof SendStreamRequestSchema>;
type SettleFrame = MessageInitShape<typeof SettleStreamRequestSchema>;

/** Requests written by call() and read by the stream: a queue that can be waited on. */
class FrameQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }
}

class FramePipe<Req, Res> {
  private readonly frames = new FrameQueue<Req>();
  private readonly waiting: { resolve(answer: Res): void; reject(error: unknown): void }[] = [];
  private readonly done: Promise<void>;

  constructor(open: (frames: AsyncIterable<Req>) => AsyncIterable<Res>) {
    this.done = (async () => {
      let failure: unknown = new Error("the stream ended before answering the frame");
      try {
        for await (const answer of open(this.frames)) this.waiting.shift()?.resolve(answer);
      } catch (error) {
        failure = error;
      }
      for (const waiter of this.waiting.splice(0)) waiter.reject(failure);
    })();
  }

  protected frame(request: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.frames.push(request);
    });
  }

  /** Half-closes the stream; resolves once every frame is answered and the call ended. */
  async close(): Promise<void> {
    this.frames.close();
    await this.done;
  }
}

function failed(error: FrameError): Error {
  return new ConnectError(error.message, error.code);
}

/** Send over a SendStream: resolves with the results, rejects with the frame's error. */
export class SendPipe extends FramePipe<SendFrame, { results: SendResult[]; error?: FrameError }> {
  constructor(messaging: MessagingClient, signal: AbortSignal) {
    super((frames) => messaging.sendStream(frames, { signal }));
  }

  async send(request: SendFrame): Promise<SendResult[]> {
    const answer = await this.frame(request);
    if (answer.error) throw failed(answer.error);
    return answer.results;
  }
}

/** Settle over a SettleStream: resolves when settled, rejects with the frame's error. */
export class SettlePipe extends FramePipe<SettleFrame, { error?: FrameError }> {
  constructor(messaging: MessagingClient, signal: AbortSignal) {
    super((frames) => messaging.settleStream(frames, { signal }));
  }

  async settle(request: SettleFrame): Promise<void> {
    const answer = await this.frame(request);
    if (answer.error) throw failed(answer.error);
  }
}
