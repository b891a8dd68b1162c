/**
 * Scenario 2 — session throughput: `sessions` × `messagesPerSession` messages of 1 KiB,
 * sent in batches (several Send calls in flight), received by `receivers` concurrent
 * accept-next loops. Each receiver accepts the next session, receives it with prefetch,
 * completes every message (one SettleStream frame per batch of lock tokens, one
 * SettleStream per connection) and closes the session
 * once its stream ends after `idleWaitMs` without a message. Measures msgs/s from the first
 * Send to the last completion and the CPU per message of broker, nats-server and client,
 * and checks that each session's messages arrived in send order and that every message
 * was completed exactly once.
 */
import { performance } from "node:perf_hooks";
import type { ReceivedMessage } from "../../gen/ts/sessionbus/v1/message_pb.js";
import {
  acceptNext,
  type BenchClient,
  CALL_TIMEOUT_MS,
  closeSession,
  createBenchClient,
  createSessionQueue,
  deleteQueue,
  describeError,
  type MessageInit,
  runPool,
} from "../support/client.js";
import { type DrainOptions, drainSession } from "../support/drain-session.js";
import { SettlePipe } from "../support/frame-pipe.js";
import {
  type Sequenced,
  SessionOrderCheck,
  sequencedBody,
  sequenceOf,
} from "../support/order-check.js";
import { type CpuReading, cpuMsPerMessage, readCpu } from "../support/resources.js";
import {
  anySignal,
  Figures,
  type Scenario,
  type ScenarioContext,
  sleep,
} from "../support/scenario.js";
import { rate, round, summarize } from "../support/stats.js";

/** How long one accept-next call waits before the receiver asks again. */
const ACCEPT_WAIT_MS = 5_000;
/** Receivers per HTTP/2 connection. */
const RECEIVERS_PER_CONNECTION = 16;
/** Time for the receivers' first accept-next calls to reach the broker before sending. */
const RECEIVERS_READY_MS = 500;

export const sessionThroughput: Scenario = {
  id: "sessionThroughput",
  title: "2. Session throughput (send batches → accept-next receivers → complete → close)",
  timeoutMs: (sizes) => 60_000 + sizes.sessions * sizes.messagesPerSession * 5,
  run,
};

async function run(context: ScenarioContext): Promise<Figures> {
  const { sizes } = context;
  const total = sizes.sessions * sizes.messagesPerSession;
  const sender = createBenchClient(context.brokerUrl);
  const connections = Array.from(
    { length: Math.ceil(sizes.receivers / RECEIVERS_PER_CONNECTION) },
    () => createBenchClient(context.brokerUrl),
  );
  const queue = await createSessionQueue(sender, "throughput", context.problem);
  const finished = new AbortController();
  const signal = anySignal(context.signal, finished.signal);

  const check = new SessionOrderCheck(sizes.sessions, sizes.messagesPerSession, sessionId);
  /** What each delivered lock token carried, until its completion is accepted. */
  const delivered = new Map<string, Sequenced | undefined>();
  const pids = { broker: context.brokerPid, nats: context.natsPid };
  let cpuAtEnd: Promise<CpuReading> | undefined;
  let completed = 0;
  let lastCompletion = 0;
  const onCompleted = (count: number, lockTokens: string[]) => {
    for (const token of lockTokens) {
      check.completed(delivered.get(token));
      delivered.delete(token);
    }
    completed += count;
    lastCompletion = performance.now();
    if (completed >= total && cpuAtEnd === undefined) {
      cpuAtEnd = readCpu(pids);
      finished.abort();
    }
  };
  const onMessage = (message: ReceivedMessage) => {
    const sequenced = sequenceOf(message.message?.body);
    const arrivedIn = message.message?.sessionId;
    if (sequenced !== undefined && arrivedIn !== sessionId(sequenced.session)) {
      context.problem(
        `a message sent to session ${sessionId(sequenced.session)} arrived in ${arrivedIn}`,
      );
    }
    check.delivered(sequenced);
    delivered.set(message.lockToken, sequenced);
  };
  const stats = { sessionsAccepted: 0, idleTailsMs: [] as number[], closeMs: [] as number[] };
  const settlePipes = connections.map((c) => new SettlePipe(c.messaging, context.signal));
  try {
    const receivers = Array.from({ length: sizes.receivers }, (_, i) =>
      receiverLoop(
        connections[i % connections.length] as BenchClient,
        settlePipes[i % connections.length] as SettlePipe,
        queue,
        context,
        signal,
        { onCompleted, onMessage },
        stats,
      ),
    );
    await sleep(RECEIVERS_READY_MS, signal);

    const cpuAtStart = await readCpu(pids);
    const started = performance.now();
    const sendTime = await sendAll(sender, queue, context, signal);
    await Promise.all(receivers);
    const cpu = cpuMsPerMessage(cpuAtStart, await (cpuAtEnd ?? readCpu(pids)), completed);
    if (completed < total) {
      context.problem(`session throughput: ${completed} of ${total} messages completed`);
    }
    for (const violation of check.violations()) context.problem(violation);
    const idleTail = summarize(stats.idleTailsMs);
    const close = summarize(stats.closeMs);
    return new Figures()
      .add("messages", completed, "msgs", "messages sent, received and completed")
      .add("sessions", sizes.sessions, "sessions", "sessions")
      .add("receivers", sizes.receivers, "receivers", "concurrent accept-next receivers")
      .add("sendBatch", sizes.sendBatch, "msgs", "messages per Send")
      .add("msgsPerSec", rate(completed, lastCompletion - started), "msgs/s", "end to end")
      .add("sendMsgsPerSec", rate(total, sendTime - started), "msgs/s", "send phase alone")
      .add("sessionsAccepted", stats.sessionsAccepted, "sessions", "sessions accepted")
      .add("idleTailP50Ms", idleTail.p50, "ms", "last message → stream end, p50")
      .add("closeP50Ms", close.p50, "ms", "CloseSession p50")
      .add(
        "verifiedMessages",
        check.completedOnce(),
        "msgs",
        "completed exactly once (order checked per session)",
      )
      .add("cpuMsPerMsg", cpu.total as number, "ms", "CPU per message, all three processes")
      .add("brokerCpuMsPerMsg", cpu.broker as number, "ms", "broker CPU per message")
      .add("natsCpuMsPerMsg", cpu.nats as number, "ms", "nats-server CPU per message")
      .add("clientCpuMsPerMsg", cpu.client as number, "ms", "client CPU per message")
      .add(
        "elapsedSeconds",
        round((lastCompletion - started) / 1000),
        "s",
        "first send → last completion",
      );
  } finally {
    finished.abort();
    await Promise.all(settlePipes.map((pipe) => pipe.close()));
    await deleteQueue(sender, queue, context.problem);
    sender.close();
    for (const connection of connections) connection.close();
  }
}

const sessionId = (session: number) => `t-${session}`;

/**
 * Sends every message, session by session, in batches; resolves with the time it ended.
 * A batch that continues the last session of the batch before it waits for that batch, so
 * that send order within a session is well defined while several Sends are in flight.
 */
async function sendAll(
  client: BenchClient,
  queue: string,
  context: ScenarioContext,
  signal: AbortSignal,
): Promise<number> {
  const { sessions, messagesPerSession, sendBatch, sendsInFlight } = context.sizes;
  const total = sessions * messagesPerSession;
  const batches = Math.ceil(total / sendBatch);
  const sent: Promise<void>[] = [];
  await runPool(batches, sendsInFlight, signal, async (batch) => {
    const first = batch * sendBatch;
    const shared = batch > 0 && first % messagesPerSession !== 0;
    const sending = (async () => {
      if (shared) await sent[batch - 1];
      const messages: MessageInit[] = [];
      const stamp = performance.now();
      for (let i = first; i < Math.min(total, first + sendBatch); i++) {
        const session = Math.floor(i / messagesPerSession);
        messages.push({
          sessionId: sessionId(session),
          body: sequencedBody(stamp, session, i % messagesPerSession),
        });
      }
      try {
        await client.messaging.send(
          { entityPath: queue, messages },
          { timeoutMs: CALL_TIMEOUT_MS },
        );
      } catch (error) {
        context.problem(describeError("Send", error));
      }
    })();
    sent[batch] = sending;
    await sending;
  });
  return performance.now();
}

/** Accept-next, drain, close — until every message is completed or time is up. */
async function receiverLoop(
  client: BenchClient,
  settleChannel: SettlePipe,
  queue: string,
  context: ScenarioContext,
  signal: AbortSignal,
  handlers: Pick<DrainOptions, "onCompleted" | "onMessage">,
  stats: { sessionsAccepted: number; idleTailsMs: number[]; closeMs: number[] },
): Promise<void> {
  const { prefetch, idleWaitMs } = context.sizes;
  while (!signal.aborted) {
    let session: Awaited<ReturnType<typeof acceptNext>>;
    try {
      session = await acceptNext(client.messaging, queue, ACCEPT_WAIT_MS, signal);
    } catch (error) {
      if (signal.aborted) return;
      context.problem(describeError("AcceptSession (next)", error));
      await sleep(100, signal);
      continue;
    }
    if (session === undefined) continue;
    stats.sessionsAccepted++;
    const drained = await drainSession(client.messaging, queue, session, {
      prefetch,
      idleWaitMs,
      signal,
      settleChannel,
      ...handlers,
      onProblem: context.problem,
    });
    if (drained.received > 0) stats.idleTailsMs.push(drained.endedAt - drained.lastMessageAt);
    const closing = performance.now();
    try {
      await closeSession(client.messaging, queue, session);
      stats.closeMs.push(performance.now() - closing);
    } catch (error) {
      context.problem(describeError("CloseSession", error));
    }
  }
}
