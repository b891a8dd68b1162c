/**
 * A SendStream or SettleStream call of the grpc-js test client: write() sends a frame at
 * once (without waiting for earlier answers) and resolves with that frame's answer, which
 * the broker sends one per frame, in order.
 */
import type * as grpc from "@grpc/grpc-js";
import { STREAM_WAIT_MS, within } from "./grpc-client.js";

/** FrameError as proto-loader decodes it. */
export interface FrameError {
  code: number;
  message: string;
  detail: { reason: string; field: string; entityPath: string; sessionId?: string } | null;
}

export class FrameStream<Req extends object, Res> {
  private readonly waiting: { resolve(answer: Res): void; reject(error: unknown): void }[] = [];
  private failure: unknown;
  /** Resolves when the broker ends the call (after a half-close: once every frame is answered). */
  readonly ended: Promise<void>;

  constructor(private readonly call: grpc.ClientDuplexStream<Req, Res>) {
    call.on("data", (answer: Res) => {
      const next = this.waiting.shift();
      if (next) next.resolve(answer);
      else this.failure = new Error("an answer to no frame");
    });
    this.ended = new Promise<void>((resolve, reject) => {
      call.on("status", (status: grpc.StatusObject) => {
        const error = status.code === 0 ? undefined : new Error(`stream ended: ${status.details}`);
        for (const waiter of this.waiting.splice(0)) {
          waiter.reject(error ?? new Error("the stream ended before answering the frame"));
        }
        if (error) reject(error);
        else resolve();
      });
      call.on("error", () => undefined); // reported through "status"
    });
    this.ended.catch(() => undefined);
  }

  write(frame: Req): Promise<Res> {
    if (this.failure) return Promise.reject(this.failure);
    const answer = new Promise<Res>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.call.write(frame);
    return within(answer, STREAM_WAIT_MS, "the answer to a frame");
  }

  /** Half-closes: no more frames; the broker answers those sent, then ends the call. */
  end(): Promise<void> {
    this.call.end();
    return within(this.ended, STREAM_WAIT_MS, "the end of the stream");
  }

  cancel(): void {
    this.call.cancel();
  }
}
