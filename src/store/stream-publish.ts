import { JetStreamApiError } from "@nats-io/jetstream";
import { headers, type Payload } from "@nats-io/transport-node";
import type { PipelinedRequests } from "./pipelined-requests.js";

export interface PublishOptions {
  /** Nats-Msg-Id: the stream's duplicate window drops a repeat. */
  msgId?: string;
  /** Nats-Expected-Stream: refused unless this stream stores the subject. */
  expectStream?: string;
  /** Nats-Expected-Last-Subject-Sequence: a compare-and-set on the subject's last message. */
  expectLastSubjectSequence?: number;
}

export interface PublishAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

interface PubAckReply {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code: number; err_code?: number; description: string };
}

/**
 * A JetStream publish: the message with its headers, and the stream's acknowledgement
 * (or its refusal, as the JetStreamApiError nats.js would raise).
 */
export async function publishToStream(
  requests: PipelinedRequests,
  subject: string,
  data: Payload,
  options: PublishOptions = {},
): Promise<PublishAck> {
  const { msgId, expectStream, expectLastSubjectSequence } = options;
  let h: ReturnType<typeof headers> | undefined;
  if (
    msgId !== undefined ||
    expectStream !== undefined ||
    expectLastSubjectSequence !== undefined
  ) {
    h = headers();
    if (msgId !== undefined) h.set("Nats-Msg-Id", msgId);
    if (expectStream !== undefined) h.set("Nats-Expected-Stream", expectStream);
    if (expectLastSubjectSequence !== undefined) {
      h.set("Nats-Expected-Last-Subject-Sequence", String(expectLastSubjectSequence));
    }
  }
  const reply = await requests.request(subject, data, h);
  const ack = reply.json<PubAckReply>();
  if (ack.error) {
    throw new JetStreamApiError({
      code: ack.error.code,
      err_code: ack.error.err_code ?? 0,
      description: ack.error.description,
    });
  }
  if (ack.stream === undefined || ack.seq === undefined) {
    throw new Error(`JetStream answered a publish on ${subject} with no sequence number.`);
  }
  return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true };
}
