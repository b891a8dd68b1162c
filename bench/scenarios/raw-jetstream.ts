/**
 * Scenario 1 — the raw JetStream ceiling the broker is compared against: 1 KiB messages
 * published with many publishes awaiting their ack at once into a work-queue stream (file
 * storage, like the broker's), consumed by a durable pull consumer and acked, all in this
 * process with nats.js. Measures msgs/s from the first publish to the last ack reaching
 * the server, and publish → consume latency.
 */
import { performance } from "node:perf_hooks";
import {
  AckPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { stampedBody, stampOf } from "../support/client.js";
import { Figures, type Scenario, type ScenarioContext } from "../support/scenario.js";
import { rate, summarize } from "../support/stats.js";

const CONSUMER = "bench";
/** Messages a consume() pull asks for at once. */
const PULL_BATCH = 1_000;
const WARM_UP_MESSAGES = 5_000;

export const rawJetStream: Scenario = {
  id: "rawJetStream",
  title: "1. Raw JetStream ceiling (nats.js, no broker)",
  timeoutMs: (sizes) => 30_000 + sizes.rawMessages * 2,
  run,
};

async function run(context: ScenarioContext): Promise<Figures> {
  const { rawMessages: total, rawInFlight } = context.sizes;
  const publisher = await connect({ servers: context.natsUrl, name: "bench-raw-publisher" });
  const subscriber = await connect({ servers: context.natsUrl, name: "bench-raw-consumer" });
  const jsm = await jetstreamManager(publisher);
  const suffix = Date.now().toString(36);
  const stream = `BENCH_RAW_${suffix}`;
  const subject = `bench.raw.${suffix}`;
  try {
    await jsm.streams.add({
      name: stream,
      subjects: [subject],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: 1,
    });
    await jsm.consumers.add(stream, {
      durable_name: CONSUMER,
      ack_policy: AckPolicy.Explicit,
      max_ack_pending: Math.max(total, 1_000),
    });
    const pass = { publisher, subscriber, stream, subject, inFlight: rawInFlight };
    // Not measured: warms up the JIT of this process and the new stream.
    await pump(context, pass, Math.min(WARM_UP_MESSAGES, Math.ceil(total / 4)));
    const measured = await pump(context, pass, total);

    const latency = summarize(measured.latencies);
    return new Figures()
      .add("messages", measured.latencies.length, "msgs", "messages published, consumed and acked")
      .add("inFlight", rawInFlight, "publishes", "publishes awaiting their ack at once")
      .add(
        "msgsPerSec",
        rate(measured.latencies.length, measured.elapsedMs),
        "msgs/s",
        "end to end",
      )
      .add("publishMsgsPerSec", rate(total, measured.publishMs), "msgs/s", "publish acks")
      .add("latencyP50Ms", latency.p50, "ms", "publish → consume p50")
      .add("latencyP99Ms", latency.p99, "ms", "publish → consume p99");
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
    await publisher.close();
    await subscriber.close();
  }
}

interface Pass {
  publisher: NatsConnection;
  subscriber: NatsConnection;
  stream: string;
  subject: string;
  inFlight: number;
}

/** Publishes `total` messages with `inFlight` outstanding while consuming and acking them. */
async function pump(
  context: ScenarioContext,
  pass: Pass,
  total: number,
): Promise<{ latencies: number[]; elapsedMs: number; publishMs: number }> {
  const consumer = await jetstream(pass.subscriber).consumers.get(pass.stream, CONSUMER);
  const messages = await consumer.consume({ max_messages: PULL_BATCH });
  const stop = () => messages.stop();
  context.signal.addEventListener("abort", stop);
  const latencies: number[] = [];
  const consumed = (async () => {
    for await (const m of messages) {
      latencies.push(performance.now() - stampOf(m.data));
      m.ack();
      if (latencies.length >= total) break;
    }
    messages.stop();
    // Every ack was written before this PING: the server has them all once it answers.
    await pass.subscriber.flush();
    return performance.now();
  })();

  const js = jetstream(pass.publisher);
  const started = performance.now();
  let published = 0;
  let lastPubAck = started;
  const publishWorker = async () => {
    while (published < total && !context.signal.aborted) {
      published++;
      await js.publish(pass.subject, stampedBody(performance.now()));
      lastPubAck = performance.now();
    }
  };
  await Promise.all(Array.from({ length: Math.min(pass.inFlight, total) }, publishWorker));
  const finished = await consumed;
  context.signal.removeEventListener("abort", stop);
  if (latencies.length < total) {
    context.problem(`consumed ${latencies.length} of ${total} messages`);
  }
  return { latencies, elapsedMs: finished - started, publishMs: lastPubAck - started };
}
