import { createInbox, type Msg, type NatsConnection, nanos } from "@nats-io/transport-node";
import type { Delivery, DeliveryBatch } from "./delivery.js";
import type { PipelinedRequests } from "./pipelined-requests.js";
import { PullInterruptedError } from "./pull-errors.js";

/** nats.js's fetch refuses to wait less than this; shorter waits go through shortPull. */
export const LIBRARY_MIN_PULL_MS = 1000;

/**
 * One pull request that waits less than a second, which nats.js's fetch refuses: a plain
 * `CONSUMER.MSG.NEXT` request whose replies are read here. Without it a receive stream
 * asked to end after, say, 200 ms without a message would wait a whole second for the pull
 * to expire, and a session receiver would hold every session that long after it runs dry.
 * The server ends the pull itself at `expiresMs` (status 408), so no request outlives it.
 */
export function shortPull(
  nc: NatsConnection,
  requests: PipelinedRequests,
  stream: string,
  consumer: string,
  max: number,
  expiresMs: number,
  flush: () => Promise<void>,
  /** Told of each ack once the server has answered it. */
  acked: (stream: string) => void = () => undefined,
): DeliveryBatch {
  const inbox = createInbox();
  const sub = nc.subscribe(inbox, { max: max + 1 });
  nc.publish(
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
    JSON.stringify({ batch: max, expires: nanos(Math.max(1, expiresMs)) }),
    { reply: inbox },
  );
  return {
    stop: () => sub.unsubscribe(),
    async *[Symbol.asyncIterator]() {
      let received = 0;
      try {
        for await (const m of sub) {
          // Status replies (no data, a code): 408 the pull expired, 404 / 409 it ended.
          const code = m.headers?.code ?? 0;
          // 503: no consumer answered (gone with a restarted nats-server); 409 with
          // "server shutdown": the server is going down. Both need the consumer looked at.
          if (
            code === 503 ||
            (code === 409 && /server shutdown/i.test(m.headers?.description ?? ""))
          ) {
            throw new PullInterruptedError(`pull ended with status ${code}`);
          }
          if (code >= 400) return;
          if (code !== 0 || !m.reply) continue; // 100: a heartbeat
          yield rawDelivery(nc, requests, m, flush, () => acked(stream));
          if (++received >= max) return;
        }
      } finally {
        sub.unsubscribe();
      }
    },
  };
}

/** A delivery from a raw pull: sequence and count come from its `$JS.ACK…` reply subject. */
function rawDelivery(
  nc: NatsConnection,
  requests: PipelinedRequests,
  m: Msg,
  flush: () => Promise<void>,
  acked: () => void,
): Delivery {
  const reply = m.reply as string;
  const tokens = reply.split(".");
  // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>,
  // or with <domain>.<account hash> after ACK (12 tokens or more).
  const at = tokens.length >= 12 ? 4 : 2;
  return {
    streamSequence: Number(tokens[at + 3]),
    consumerSequence: Number(tokens[at + 4]),
    deliveryCount: Number(tokens[at + 2]),
    subject: m.subject,
    data: m.data,
    ack: async () => {
      try {
        await requests.request(reply, "+ACK");
      } finally {
        acked(); // the stream's cached figures are stale now
      }
    },
    nak: async (delayMs) => {
      nc.publish(reply, delayMs ? `-NAK ${JSON.stringify({ delay: nanos(delayMs) })}` : "-NAK");
      await flush();
    },
    extend: async () => {
      nc.publish(reply, "+WPI");
      await flush();
    },
  };
}
