import { useState } from "preact/hooks";
import type { ReceivedMessage } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { messaging } from "./api.js";
import { usePoll } from "./use-poll.js";

export const PAGE_SIZE = 50;

/**
 * Pages of peeked messages of one entity (or one session of it): each page starts after the
 * last sequence number of the one before; `first` goes back to the start.
 */
export function usePeekPages(entityPath: string, sessionId?: string) {
  const [starts, setStarts] = useState<bigint[]>([0n]);
  const from = starts.at(-1) ?? 0n;
  const page = usePoll(
    async () =>
      (
        await messaging.peek({
          entityPath,
          fromSequenceNumber: from,
          maxMessages: PAGE_SIZE,
          sessionId,
        })
      ).messages,
    [entityPath, sessionId, from],
  );
  const messages: ReceivedMessage[] = page.value ?? [];
  const last = messages.at(-1);
  return {
    ...page,
    messages,
    pageNumber: starts.length,
    next:
      messages.length === PAGE_SIZE && last
        ? () => setStarts([...starts, last.sequenceNumber + 1n])
        : undefined,
    previous: starts.length > 1 ? () => setStarts(starts.slice(0, -1)) : undefined,
  };
}
