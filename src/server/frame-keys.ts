import type {
  SendStreamRequest,
  SettleStreamRequest,
} from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { MAX_BATCH_MESSAGES, MAX_ID_LENGTH } from "../broker/messages/message-validation.js";

/** Entity paths are at most 260 characters (semantics §8). */
const MAX_PATH_CHARACTERS = 260;

/**
 * The ordering keys of a SendStream frame: one per distinct session it sends to. A frame
 * the broker is sure to refuse (more messages than a batch may hold, or a path or session
 * id longer than allowed — measured in UTF-16 units, at most two per character) gets none:
 * it is answered with its error without waiting, and no key is built from an oversized
 * field (5,000 messages × a 1 MiB path would be 5 GB of keys).
 */
export function sendFrameKeys(frame: SendStreamRequest): string[] {
  const { entityPath, messages } = frame;
  if (messages.length > MAX_BATCH_MESSAGES || entityPath.length > 2 * MAX_PATH_CHARACTERS) {
    return [];
  }
  const sessions = new Set<string>();
  for (const message of messages) {
    const sessionId = message.sessionId ?? "";
    if (sessionId.length > 2 * MAX_ID_LENGTH) return [];
    sessions.add(sessionId);
  }
  return [...sessions].map((sessionId) => `${entityPath}\n${sessionId}`);
}

/**
 * The ordering key of a SettleStream frame: settles under one session lock keep frame order
 * (an abandon recalls deliveries); session-less ones need none. Oversized fields: as above.
 */
export function settleFrameKeys(frame: SettleStreamRequest): string[] {
  const { entityPath, session } = frame;
  if (!session || entityPath.length > 2 * MAX_PATH_CHARACTERS) return [];
  if (session.sessionId.length > 2 * MAX_ID_LENGTH) return [];
  return [`${entityPath}\n${session.sessionId}`];
}
