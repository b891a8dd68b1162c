import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type ReceivedMessage,
  ReceivedMessageSchema,
} from "../../../gen/ts/sessionbus/v1/message_pb.js";

/**
 * Messages are stored as a ReceivedMessage holding only what is durable: the sender's
 * message, enqueued/expiry times, state, dead-letter fields and, for copies (deferred or
 * dead-lettered), the original sequence number and delivery count. Everything per-delivery
 * (lock token, lock expiry) is filled in when the message is handed out.
 */
export function encodeStored(message: ReceivedMessage): Uint8Array {
  return toBinary(ReceivedMessageSchema, message);
}

export function decodeStored(data: Uint8Array): ReceivedMessage {
  return fromBinary(ReceivedMessageSchema, data);
}

/** A copy of a stored message with the per-delivery fields cleared. */
export function durableCopy(message: ReceivedMessage): ReceivedMessage {
  const copy = create(ReceivedMessageSchema, message);
  copy.lockToken = "";
  copy.lockedUntil = undefined;
  return copy;
}
