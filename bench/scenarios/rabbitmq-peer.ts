/**
 * Scenario 2 on RabbitMQ (`--peers` only): the peer the broker is compared against. The
 * same job at the same sizes — `sessions` keys × `messagesPerSession` messages of 1 KiB,
 * published key by key in batches of `sendBatch` with `sendsInFlight` batches awaiting
 * their confirms, received by `receivers` consumers with prefetch `prefetch` and acked by
 * hand — on a RabbitMQ node of its own (support/rabbitmq-server.ts), with amqplib.
 *
 * Durable queues and persistent messages on a confirm channel. Per-key order comes from a
 * consistent-hash exchange over one single-active-consumer queue per consumer: a key's
 * messages all land in one queue, which delivers them in publish order to its one active
 * consumer. Unlike a queue per key this needs no queue declared per key — keys come and go
 * as freely as sessions do — and the queue count stays at the consumer count whatever the
 * number of keys; the price is that keys share queues unevenly (the hash decides), which
 * the figures show. A consumer acks the messages that arrived in one turn of the event loop
 * with one multiple-ack, as scenario 2's receivers complete a batch of lock tokens in one
 * frame. Measured from the first publish until every ack has reached the node (a round trip
 * on each consumer channel after its last ack), with the same order and exactly-once check
 * as scenario 2.
 */
import { once } from "node:events";
import { performance } from "node:perf_hooks";
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { connect } from "amqplib";
import { runPool } from "../support/client.js";
import {
  type Sequenced,
  SessionOrderCheck,
  sequencedBody,
  sequenceOf,
} from "../support/order-check.js";
import { residentBytes } from "../support/processes.js";
import { startRabbitMqServer } from "../support/rabbitmq-server.js";
import { cpuMsPerMessage, readCpu } from "../support/resources.js";
import { Figures, type Scenario, type ScenarioContext } from "../support/scenario.js";
import { rate, round } from "../support/stats.js";

/** Consumers per AMQP connection (scenario 2 has 16 receivers per HTTP/2 connection). */
const CONSUMERS_PER_CONNECTION = 16;
const MIB = 1024 * 1024;

export const rabbitmqPeer: Scenario = {
  id: "rabbitmq",
  title: "2p. RabbitMQ peer: scenario 2's job on RabbitMQ (amqplib, --peers)",
  timeoutMs: (sizes) => 150_000 + sizes.sessions * sizes.messagesPerSession * 5,
  run,
};

const sessionId = (session: number) => `t-${session}`;

async function run(context: ScenarioContext): Promise<Figures> {
  const server = await startRabbitMqServer(context.log);
  const connections: ChannelModel[] = [];
  try {
    return await measure(context, server.url, server.beamPid, connections, server.startSeconds);
  } finally {
    for (const connection of connections) await connection.close().catch(() => undefined);
    await server.stop();
  }
}

interface Consumer {
  channel: Channel;
  queue: string;
  received: number;
}

async function measure(
  context: ScenarioContext,
  url: string,
  beamPid: number,
  connections: ChannelModel[],
  startSeconds: number,
): Promise<Figures> {
  const { sizes } = context;
  const total = sizes.sessions * sizes.messagesPerSession;
  const open = async () => {
    const connection = await connect(url);
    connection.on("error", (error: Error) => context.problem(`connection: ${error.message}`));
    connections.push(connection);
    return connection;
  };
  const admin = await (await open()).createChannel();
  const exchange = `bench-sessions-${Date.now().toString(36)}`;
  const queues = Array.from({ length: sizes.receivers }, (_, i) => `${exchange}-${i}`);
  await admin.assertExchange(exchange, "x-consistent-hash", { durable: true });
  for (const queue of queues) {
    await admin.assertQueue(queue, {
      durable: true,
      arguments: { "x-single-active-consumer": true },
    });
    // The binding key of a consistent-hash exchange is the queue's weight.
    await admin.bindQueue(queue, exchange, "1");
  }

  const check = new SessionOrderCheck(sizes.sessions, sizes.messagesPerSession, sessionId);
  let completed = 0;
  let measured = false;
  let allAcked: () => void = () => {};
  const acked = new Promise<void>((resolve) => {
    allAcked = resolve;
  });
  context.signal.addEventListener("abort", () => allAcked(), { once: true });

  const consumerConnections: ChannelModel[] = [];
  for (let i = 0; i < Math.ceil(queues.length / CONSUMERS_PER_CONNECTION); i++) {
    consumerConnections.push(await open());
  }
  const consumers: Consumer[] = [];
  for (const [i, queue] of queues.entries()) {
    const connection = consumerConnections[Math.floor(i / CONSUMERS_PER_CONNECTION)];
    const channel = await (connection as ChannelModel).createChannel();
    await channel.prefetch(sizes.prefetch);
    const consumer: Consumer = { channel, queue, received: 0 };
    consumers.push(consumer);
    let batch: { last: ConsumeMessage; messages: (Sequenced | undefined)[] } | undefined;
    const ackBatch = () => {
      if (batch === undefined) return;
      const { last, messages } = batch;
      batch = undefined;
      // One ack for every delivery of this channel up to `last`.
      channel.ack(last, true);
      for (const message of messages) check.completed(message);
      completed += messages.length;
      if (completed >= total) allAcked();
    };
    await channel.consume(
      queue,
      (message) => {
        if (message === null) {
          // Deleting the queues at the end cancels their consumers.
          if (!measured) context.problem(`consumer of ${queue} cancelled by the node`);
          return;
        }
        const sequenced = sequenceOf(message.content);
        if (sequenced !== undefined && message.fields.routingKey !== sessionId(sequenced.session)) {
          context.problem("a message arrived with another key than it was published with");
        }
        if (message.fields.redelivered) context.problem("a message was redelivered");
        check.delivered(sequenced);
        consumer.received++;
        if (batch === undefined) {
          batch = { last: message, messages: [] };
          setImmediate(ackBatch);
        }
        batch.last = message;
        batch.messages.push(sequenced);
      },
      { noAck: false },
    );
  }

  const publisher = await (await open()).createConfirmChannel();
  const cpuAtStart = await readCpu({ server: beamPid });
  const started = performance.now();
  const sendTime = await publishAll(publisher, exchange, context);
  await acked;
  // Acks have no reply: a round trip on each channel after its last ack shows they arrived.
  const left = await Promise.all(consumers.map(({ channel, queue }) => channel.checkQueue(queue)));
  const finished = performance.now();
  const cpu = cpuMsPerMessage(cpuAtStart, await readCpu({ server: beamPid }), completed);
  const serverRss = await residentBytes(beamPid).catch(() => Number.NaN);
  measured = true;

  if (completed < total) context.problem(`${completed} of ${total} messages acked`);
  const ready = left.reduce((sum, reply) => sum + reply.messageCount, 0);
  if (ready > 0) context.problem(`${ready} messages still in the queues at the end`);
  for (const violation of check.violations()) context.problem(violation);
  const perQueue = consumers.map((consumer) => consumer.received);

  for (const queue of queues) await admin.deleteQueue(queue).catch(() => undefined);
  await admin.deleteExchange(exchange).catch(() => undefined);

  return new Figures()
    .add("messages", completed, "msgs", "messages published, consumed and acked")
    .add("sessions", sizes.sessions, "keys", "keys (sessions)")
    .add("consumers", consumers.length, "consumers", "consumers, one queue each")
    .add("msgsPerSec", rate(completed, finished - started), "msgs/s", "end to end")
    .add("sendMsgsPerSec", rate(total, sendTime - started), "msgs/s", "publish phase (confirmed)")
    .add(
      "verifiedMessages",
      check.completedOnce(),
      "msgs",
      "acked exactly once (order checked per key)",
    )
    .add("busiestQueueMsgs", Math.max(...perQueue), "msgs", "messages of the busiest queue")
    .add("quietestQueueMsgs", Math.min(...perQueue), "msgs", "messages of the quietest queue")
    .add("cpuMsPerMsg", cpu.total as number, "ms", "CPU per message, server and client")
    .add("serverCpuMsPerMsg", cpu.server as number, "ms", "server (beam.smp) CPU per message")
    .add("clientCpuMsPerMsg", cpu.client as number, "ms", "client CPU per message")
    .add("serverRssMiB", round(serverRss / MIB, 1), "MiB", "server RSS at the end")
    .add("startSeconds", round(startSeconds, 1), "s", "node start (not measured above)")
    .add("elapsedSeconds", round((finished - started) / 1000), "s", "first publish → last ack");
}

/**
 * Publishes every message key by key in batches on one confirm channel (so in send order),
 * `sendsInFlight` batches awaiting their confirms at once; resolves with the time the last
 * confirm came.
 */
async function publishAll(
  channel: ConfirmChannel,
  exchange: string,
  context: ScenarioContext,
): Promise<number> {
  const { sessions, messagesPerSession, sendBatch, sendsInFlight } = context.sizes;
  const total = sessions * messagesPerSession;
  const batches = Math.ceil(total / sendBatch);
  let lastConfirm = performance.now();
  /** Batches publish one after the other: a batch waits while the channel is full. */
  let publishing = Promise.resolve();
  await runPool(batches, sendsInFlight, context.signal, async (batch) => {
    const confirms: Promise<void>[] = [];
    const turn = publishing.then(async () => {
      const stamp = performance.now();
      for (let i = batch * sendBatch; i < Math.min(total, (batch + 1) * sendBatch); i++) {
        const session = Math.floor(i / messagesPerSession);
        const body = Buffer.from(sequencedBody(stamp, session, i % messagesPerSession).buffer);
        let full = false;
        confirms.push(
          new Promise<void>((resolve) => {
            full = !channel.publish(
              exchange,
              sessionId(session),
              body,
              { persistent: true },
              (error) => {
                if (error) context.problem(`publish not confirmed: ${String(error)}`);
                resolve();
              },
            );
          }),
        );
        if (full) await once(channel, "drain", { signal: context.signal });
      }
    });
    publishing = turn;
    await turn;
    await Promise.all(confirms);
    lastConfirm = performance.now();
  });
  return lastConfirm;
}
