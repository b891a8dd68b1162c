/**
 * SendStream and SettleStream used like Send and Settle calls (through the SDK's
 * FramePipe): each call is a frame, answered in order, many in flight on one stream.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import type {
  FrameError,
  SendResult,
  SendStreamRequestSchema,
  SettleStreamRequestSchema,
} from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { FramePipe } from "../../src/client/frame-pipe.js";
import type { MessagingClient } from "./client.js";

type SendFrame = MessageInitShape<typeof SendStreamRequestSchema>;
type SettleFrame = MessageInitShape<typeof SettleStreamRequestSchema>;

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
