import { MAX_ID_LENGTH } from "./message-validation.js";

/**
 * A Nats-Msg-Id the broker makes for its own publishes (a scheduled message's activation,
 * a deferred copy, a topic message's fan-out). It is longer than any message_id a sender
 * may give (MAX_ID_LENGTH), so the two never meet in a stream's duplicate table: a
 * sender's id can never make JetStream drop one of the broker's publishes as a
 * duplicate, nor the reverse.
 */
export function internalPublishId(kind: string, ...parts: (string | number)[]): string {
  return `sessionbus-${kind}-${parts.join("-")}-`.padEnd(MAX_ID_LENGTH + 1, "_");
}
