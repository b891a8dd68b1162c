/**
 * The receiving side of a session, as an application would write it: one receive stream
 * under the session lock with prefetch, every message completed (in batches of lock
 * tokens), until the stream ends.
 */
import { performance } from "node:perf_hooks";
import type { ReceivedMessage } from "../../gen/ts/sessionbus/v1/message_pb.js";
import {
  CALL_TIMEOUT_MS,
  Completer,
  describeError,
  type MessagingClient,
  maxWait,
  type SessionRef,
  type SettleChannel,
} from "./client.js";

export interface DrainOptions {
  /** Receive credit of the stream. */
  prefetch: number;
  /** max_wait of the stream: it ends when no message came for this long. 0: no limit. */
  idleWaitMs: number;
  /** End after this many messages. @default 0 (no limit) */
  maxMessages?: number;
  /** Cancels the stream (a normal end, not an error). */
  signal: AbortSignal;
  /** Called for every message as it arrives, before it is completed. */
  onMessage?(message: ReceivedMessage, arrivedAt: number): void;
  /** Settle over this SettleStream instead of with Settle calls. */
  settleChannel?: SettleChannel;
  /** Called when a Settle call succeeded, with the number and lock tokens it completed. */
  onCompleted(count: number, lockTokens: string[]): void;
  onProblem(line: string): void;
}

export interface DrainResult {
  received: number;
  /** performance.now() of the last message, or of the stream's start when none came. */
  lastMessageAt: number;
  /** performance.now() when the stream ended. */
  endedAt: number;
}

export async function drainSession(
  messaging: MessagingClient,
  entityPath: string,
  session: SessionRef,
  options: DrainOptions,
): Promise<DrainResult> {
  const completer = new Completer(
    messaging,
    entityPath,
    session,
    options.onCompleted,
    (what, e) => options.onProblem(describeError(what, e)),
    options.settleChannel,
  );
  let received = 0;
  let lastMessageAt = performance.now();
  // The stream ends by itself (max_wait, max_messages); the call timeout is a backstop.
  const backstop = AbortSignal.timeout((options.idleWaitMs || 10 * 60_000) + 10 * CALL_TIMEOUT_MS);
  try {
    const stream = messaging.receiveStream(
      {
        entityPath,
        prefetch: options.prefetch,
        maxMessages: options.maxMessages ?? 0,
        ...(options.idleWaitMs > 0 ? { maxWait: maxWait(options.idleWaitMs) } : {}),
        session,
      },
      { signal: AbortSignal.any([options.signal, backstop]) },
    );
    for await (const { event } of stream) {
      if (event.case !== "message") continue; // "recalled" follows abandons only: none here
      lastMessageAt = performance.now();
      received++;
      if (event.value.deliveryCount > 1) {
        options.onProblem(
          `ReceiveStream: message redelivered (delivery ${event.value.deliveryCount})`,
        );
      }
      options.onMessage?.(event.value, lastMessageAt);
      completer.add(event.value.lockToken);
    }
  } catch (error) {
    if (!options.signal.aborted) options.onProblem(describeError("ReceiveStream", error));
  }
  const endedAt = performance.now();
  await completer.drain();
  return { received, lastMessageAt, endedAt };
}
