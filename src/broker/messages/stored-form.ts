import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { durationMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Message,
  MessageState,
  type ReceivedMessage,
  ReceivedMessageSchema,
} from "../../../gen/ts/sessionbus/v1/message_pb.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";

/** 9999-12-31T23:59:59Z, the last instant a google.protobuf.Timestamp can hold. */
const LATEST_TIMESTAMP_MS = 253_402_300_799_000;

/** The message as stored: its id (generated when empty), enqueue and expiry times. */
export function storedForm(
  entity: ResolvedEntity,
  message: Message,
  now: number,
): { messageId: string; stored: ReceivedMessage } {
  const messageId = message.messageId || randomUUID().replaceAll("-", "");
  const ttl = effectiveTtlMs(entity, message);
  const stored = create(ReceivedMessageSchema, {
    message: { ...message, messageId },
    enqueuedTime: timestampFromMs(now),
    expiresAt: ttl > 0 ? timestampFromMs(Math.min(now + ttl, LATEST_TIMESTAMP_MS)) : undefined,
    state: MessageState.ACTIVE,
  });
  return { messageId, stored };
}

/** The smaller of the message's own time to live and the entity default (0: none). */
function effectiveTtlMs(entity: ResolvedEntity, message: Message): number {
  const own = message.timeToLive ? durationMs(message.timeToLive) : 0;
  const fallback = entity.settings.defaultMessageTtlMs;
  if (own > 0 && fallback > 0) return Math.min(own, fallback);
  return own > 0 ? own : fallback;
}
