import { JetStreamApiError } from "@nats-io/jetstream";
import type { Delivery, DeliveryBatch } from "./delivery.js";
import type { PipelinedRequests } from "./pipelined-requests.js";
import { PullInterruptedError } from "./pull-errors.js";

/**
 * What the stream's leader answers, once the removal has gone through the log, when its
 * own copy was gone already (removed before, or acked by the consumer of a broker that
 * still acks too): "sequence not found" (nothing was removed) and "no message found"
 * (JSSequenceNotFoundErrF, JSStreamMsgDeleteFailedF).
 * nats-server 2.9.10 proposes a removal without looking (jsClusteredMsgDeleteRequest) and
 * answers only when it applies the entry, so the replicas that still had a copy removed it.
 */
const GONE_ALREADY = new Set([10043, 10057]);

interface MsgDeleteReply {
  success?: boolean;
  error?: { code: number; err_code?: number; description: string };
}

/**
 * Removes message `sequence` of `stream` through the stream's own raft log
 * (`$JS.API.STREAM.MSG.DELETE`, without erasing its bytes). The stream's leader proposes
 * the removal to its group and answers once a majority has it, so every replica,
 * including one that was down and catches up later, removes it, and no later leader or
 * consumer can hand the message out again.
 *
 * Why this and not the consumer's ack on a replicated stream (nats-server 2.9.10): a
 * consumer's ack removes a work-queue message only from the local store of each consumer
 * replica as it applies the ack, and the consumer leader confirms the ack (+ACK with a
 * reply) before its group has it. A leader lost right after, or a replica that was down
 * and comes back with its old copy, gave completed messages back: measured 5–173 of about
 * 1,200 after a kill -9 of the stream's leader, 3–14 over a rolling restart (later
 * nats-server releases replicate the removal themselves).
 *
 * A removal the leader finds nothing to remove for still went through the log, so it
 * counts as done (see GONE_ALREADY).
 */
export async function removeThroughStreamLog(
  requests: PipelinedRequests,
  stream: string,
  sequence: number,
): Promise<void> {
  const reply = await requests.request(
    `$JS.API.STREAM.MSG.DELETE.${stream}`,
    JSON.stringify({ seq: sequence, no_erase: true }),
  );
  const answer = reply.json<MsgDeleteReply>();
  if (answer.error && !GONE_ALREADY.has(answer.error.err_code ?? 0)) {
    throw new JetStreamApiError({
      code: answer.error.code,
      err_code: answer.error.err_code ?? 0,
      description: answer.error.description,
    });
  }
}

/** A message as the stream's leader holds it at a sequence number. */
export interface LeaderCopy {
  subject: string;
  data: Uint8Array;
}

/** Reads message `sequence` on the stream's leader; undefined when it holds none. */
export type ReadOnLeader = (sequence: number) => Promise<LeaderCopy | undefined>;

/** Whether a message held on the leader is the delivered one: same subject, same bytes. */
export function isSameMessage(held: LeaderCopy, delivery: Delivery): boolean {
  return (
    held.subject === delivery.subject &&
    held.data.length === delivery.data.length &&
    Buffer.compare(held.data, delivery.data) === 0
  );
}

/** Where and how a settlement removes a message through the stream's log. */
export interface StreamLog {
  requests: PipelinedRequests;
  stream: string;
  readOnLeader: ReadOnLeader;
}

/**
 * `delivery` with an ack that removes the message through the stream's log (see
 * removeThroughStreamLog) instead of acking it to the consumer, unless the leader holds
 * another message at its number: a removal names a number, and removing the number of a
 * message the consumer's copy holds in the leader's stead would remove another,
 * acknowledged message. Then the delivered one was never stored for good (its send was not
 * acknowledged): there is nothing to remove, and the ack succeeds.
 *
 * Why it happens: a consumer reads the copy of the stream on its own node, and with
 * nats-server 2.9.10 that copy can hold, at a number, another message than the leader.
 * Seen in loaded rolling restarts (2 runs of 35): a stream's leader was stopped as sends
 * were in flight; the new leader gave numbers 964 and 967 to two sends it acknowledged,
 * while the old leader, restarted, held at 964 and 967 two sends it had never
 * acknowledged; consumers led from that node handed those out, their completions removed
 * 964 and 967 by number, and the two acknowledged sends were lost.
 *
 * When the leader holds nothing there, the removal is still made: the message may be
 * removed already (the leader answers so, and that is done), or a leader just elected may
 * not have applied it yet, and the removal, coming after it in the log, removes it then
 * (skipping it let a completed message come again after a node kill, in one CI run).
 *
 * `held` is the leader's message at the number, read before (a read that failed is made
 * again by the ack); the leader's message at a number does not change while it holds one,
 * it can only be removed.
 *
 * The removal also ends the delivery on the consumer: a consumer treats a message of its
 * pending list removed from the stream as acked (its ack pending drops, its ack floor
 * moves; checked on nats-server 2.9.10 with 3 replicas).
 *
 * Why not the consumer's ack as well: on a work-queue stream each consumer replica
 * removes an acked message from its own copy of the stream, outside the stream's log. An
 * ack that reached some replicas while the removal through the log timed out (the
 * settlement failed, the message still on the leader) left it missing on one replica
 * only, and a session consumer made there later skipped it: the session's next messages
 * were handed out before it (a rolling restart, 1 of 10 runs).
 */
export function removedThroughLog(
  delivery: Delivery,
  log: StreamLog,
  held: Promise<LeaderCopy | undefined>,
): Delivery {
  held.catch(() => undefined); // a failed read is made again by the ack
  return {
    ...delivery,
    ack: async () => {
      const onLeader = await held.catch(() => log.readOnLeader(delivery.streamSequence));
      if (onLeader !== undefined && !isSameMessage(onLeader, delivery)) return;
      await removeThroughStreamLog(log.requests, log.stream, delivery.streamSequence);
    },
  };
}

/**
 * The deliveries of `batch`, each settled through the stream's log (see removedThroughLog).
 * The leader's message at a delivery's number is asked for as the message is handed out,
 * so the answer is there by the time it is settled: the read adds no wait to a completion.
 * Costs one read on the leader per delivery.
 */
export function withRemovalThroughLog(batch: DeliveryBatch, log: StreamLog): DeliveryBatch {
  return mapBatch(batch, (delivery) =>
    removedThroughLog(delivery, log, log.readOnLeader(delivery.streamSequence)),
  );
}

/**
 * The deliveries of `batch` while the consumer's own count goes up by one each: a jump means
 * a delivery the consumer counts as made never arrived (lost as a node stopped), which it
 * would give again only after its ack wait, after later messages of the session; a first
 * delivery above 1 means a consumer that is not new. Either ends the pull as interrupted,
 * and the session's reader recreates its consumer (every unsettled message again, in order).
 */
export function withoutGaps(batch: DeliveryBatch, sequence: { next: number }): DeliveryBatch {
  return mapBatch(batch, (delivery) => {
    if (delivery.consumerSequence !== sequence.next) {
      batch.stop();
      throw new PullInterruptedError(
        `consumer sequence ${delivery.consumerSequence}, expected ${sequence.next}`,
      );
    }
    sequence.next++;
    return delivery;
  });
}

/** `batch` with each delivery passed through `map` as it is handed out. */
function mapBatch(batch: DeliveryBatch, map: (delivery: Delivery) => Delivery): DeliveryBatch {
  return {
    stop: () => batch.stop(),
    async *[Symbol.asyncIterator]() {
      for await (const delivery of batch) yield map(delivery);
    },
  };
}
