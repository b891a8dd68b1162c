/** Connect clients of the broker's services over gRPC, with the root token. */
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService } from "../../gen/ts/sessionbus/v1/admin_service_pb.js";
import { Disposition, MessagingService } from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { rootTokenInterceptor } from "./test-credentials.js";

export interface ConnectClients {
  admin: Client<typeof AdminService>;
  messaging: Client<typeof MessagingService>;
}

/** Clients of the broker at `url` (its gRPC port, "http://host:port"). */
export function connectClients(url: string): ConnectClients {
  const transport = createGrpcTransport({ baseUrl: url, interceptors: [rootTokenInterceptor] });
  return {
    admin: createClient(AdminService, transport),
    messaging: createClient(MessagingService, transport),
  };
}

/**
 * Sends `count` messages (ids `<prefix>-<i>`, bodies "body <i>") to `queue` (or to `sendTo`,
 * the topic of a subscription) and moves them to its dead-letter queue; returns their
 * dead-letter sequence numbers, in order.
 */
export async function deadLetterMessages(
  { messaging }: ConnectClients,
  queue: string,
  count: number,
  prefix: string,
  sendTo = queue,
): Promise<bigint[]> {
  const encoder = new TextEncoder();
  await messaging.send({
    entityPath: sendTo,
    messages: Array.from({ length: count }, (_, i) => ({
      messageId: `${prefix}-${i}`,
      body: encoder.encode(`body ${i}`),
      applicationProperties: { index: { value: { case: "intValue", value: BigInt(i) } } },
    })),
  });
  const tokens: string[] = [];
  for await (const event of messaging.receiveStream(
    { entityPath: queue, prefetch: count, maxMessages: count, maxWait: { seconds: 30n } },
    { timeoutMs: 60_000 },
  )) {
    if (event.event.case === "message") tokens.push(event.event.value.lockToken);
  }
  if (tokens.length !== count) throw new Error(`received ${tokens.length} of ${count} messages`);
  await messaging.settle({
    entityPath: queue,
    lockTokens: tokens,
    disposition: Disposition.DEAD_LETTER,
    deadLetterReason: "test",
    deadLetterDescription: "dead-lettered by the test",
  });
  const peeked = await messaging.peek({
    entityPath: `${queue}/$deadletterqueue`,
    maxMessages: 250,
  });
  return peeked.messages.map((m) => m.sequenceNumber);
}

/** Every message of an entity, peeked 250 at a time. */
export async function peekEverything(
  { messaging }: ConnectClients,
  entityPath: string,
): Promise<{ sequenceNumber: bigint; messageId: string }[]> {
  const all: { sequenceNumber: bigint; messageId: string }[] = [];
  let from = 0n;
  for (;;) {
    const { messages } = await messaging.peek({
      entityPath,
      fromSequenceNumber: from,
      maxMessages: 250,
    });
    for (const m of messages) {
      all.push({ sequenceNumber: m.sequenceNumber, messageId: m.message?.messageId ?? "" });
    }
    if (messages.length < 250) return all;
    from = (messages.at(-1)?.sequenceNumber ?? 0n) + 1n;
  }
}
