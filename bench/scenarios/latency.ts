/**
 * Scenario 3 — latency at a fixed rate: `latencySessions` sessions are accepted by name and
 * each has a receive stream open before sending starts; then messages go out one per Send
 * at `latencyRate` per second, round-robin over the sessions, for `latencySeconds`.
 * Measures send → delivery (the Send starting → the message reaching its receiver); every
 * message is completed as it arrives.
 *
 * Two variants: `latency` sends each message as a frame of one SendStream and completes
 * over one SettleStream per connection (what a client that cares about latency uses);
 * `latencyUnary` makes a Send call and a Settle call per message.
 *
 * At most 100 Sends are in flight: a broker that cannot keep up makes the sender skip
 * messages (counted, and the achieved rate shows it) rather than queue without end. A
 * second, shorter phase at a tenth of the rate shows the latency below saturation.
 */
import { performance } from "node:perf_hooks";
import {
  acceptNamed,
  type BenchClient,
  CALL_TIMEOUT_MS,
  closeSession,
  createBenchClient,
  createSessionQueue,
  deleteQueue,
  describeError,
  runPool,
  type SessionRef,
  stampedBody,
  stampOf,
} from "../support/client.js";
import { drainSession } from "../support/drain-session.js";
import { SendPipe, SettlePipe } from "../support/frame-pipe.js";
import {
  anySignal,
  Figures,
  type Scenario,
  type ScenarioContext,
  sleep,
} from "../support/scenario.js";
import { rate, summarize } from "../support/stats.js";

/** Held for the whole scenario without renewing. */
const LOCK_DURATION_MS = 5 * 60_000;
/** Time for the receive streams' first pulls to reach NATS before sending. */
const STREAMS_READY_MS = 1_000;
/** How long to wait for the last messages of a phase after its last send. */
const DRAIN_MS = 30_000;
/** Send calls outstanding at most; beyond it the sender skips messages. */
const MAX_SENDS_IN_FLIGHT = 100;
/** Streams per HTTP/2 connection. */
const STREAMS_PER_CONNECTION = 50;
/** The low-rate phase: this fraction of the rate, for at most this long. */
const LOW_RATE_FRACTION = 0.1;
const LOW_RATE_MAX_SECONDS = 5;

type Api = "streams" | "calls";

const timeoutMs = (sizes: ScenarioContext["sizes"]) =>
  120_000 + sizes.latencySeconds * 2_000 + sizes.latencySessions * 100;

export const latency: Scenario = {
  id: "latency",
  title: "3. Latency at a fixed rate (one message per Send; SendStream and SettleStream)",
  timeoutMs,
  run: (context) => run(context, "streams"),
};

export const latencyUnary: Scenario = {
  id: "latencyUnary",
  title: "3b. Latency at a fixed rate (one Send call and one Settle call per message)",
  timeoutMs,
  run: (context) => run(context, "calls"),
};

interface PhaseResult {
  latencies: number[];
  sendMs: number[];
  sent: number;
  skipped: number;
  achievedRate: number;
}

async function run(context: ScenarioContext, api: Api): Promise<Figures> {
  const { latencyRate, latencySessions, latencySeconds, prefetch, setupConcurrency } =
    context.sizes;
  const sender = createBenchClient(context.brokerUrl);
  const connections = Array.from(
    { length: Math.ceil(latencySessions / STREAMS_PER_CONNECTION) },
    () => createBenchClient(context.brokerUrl),
  );
  const connectionOf = (i: number) => connections[i % connections.length] as BenchClient;
  const queue = await createSessionQueue(sender, "latency", context.problem, {
    lockDurationMs: LOCK_DURATION_MS,
  });
  const stop = new AbortController();
  const signal = anySignal(context.signal, stop.signal);
  const sendPipe = api === "streams" ? new SendPipe(sender.messaging, context.signal) : undefined;
  const settlePipes = connections.map((c) =>
    api === "streams" ? new SettlePipe(c.messaging, context.signal) : undefined,
  );
  const closePipes = () => Promise.all([sendPipe, ...settlePipes].map((pipe) => pipe?.close()));
  const sendMessage: SendOne = sendPipe
    ? (request) => sendPipe.send(request)
    : (request) => sender.messaging.send(request, { timeoutMs: CALL_TIMEOUT_MS });
  const sessions: SessionRef[] = [];
  let completed = 0;
  /** Where arriving messages are counted: the phase running. */
  let onArrival: (latencyMs: number) => void = () => {};
  try {
    await runPool(latencySessions, setupConcurrency, signal, async (i) => {
      sessions[i] = await acceptNamed(connectionOf(i).messaging, queue, `l-${i}`, signal);
    });
    const streams = sessions.map((session, i) =>
      drainSession(connectionOf(i).messaging, queue, session, {
        prefetch,
        idleWaitMs: 0,
        signal,
        onMessage: (message, arrivedAt) => onArrival(arrivedAt - stampOf(message.message?.body)),
        ...(settlePipes[i % connections.length]
          ? { settleChannel: settlePipes[i % connections.length] }
          : {}),
        onCompleted: (count) => {
          completed += count;
        },
        onProblem: context.problem,
      }),
    );
    await sleep(STREAMS_READY_MS, signal);

    const phase = async (perSecond: number, seconds: number): Promise<PhaseResult> => {
      const latencies: number[] = [];
      let expected = Number.POSITIVE_INFINITY;
      let allIn: () => void = () => {};
      const allReceived = new Promise<void>((resolve) => {
        allIn = resolve;
      });
      onArrival = (latencyMs) => {
        latencies.push(latencyMs);
        if (latencies.length >= expected) allIn();
      };
      const result = await sendAtRate(sendMessage, queue, context, signal, perSecond, seconds);
      expected = result.sent;
      if (latencies.length >= expected) allIn();
      await Promise.race([allReceived, sleep(DRAIN_MS, signal)]);
      if (latencies.length < result.sent) {
        context.problem(
          `${latencies.length} of ${result.sent} messages sent at ${perSecond}/s arrived within ${DRAIN_MS / 1000} s`,
        );
      }
      return { ...result, latencies };
    };
    const full = await phase(latencyRate, latencySeconds);
    const lowRate = Math.max(1, Math.round(latencyRate * LOW_RATE_FRACTION));
    const low = await phase(lowRate, Math.min(latencySeconds, LOW_RATE_MAX_SECONDS));

    stop.abort();
    await Promise.all(streams); // each completes what it received before it ends
    await closePipes();
    await runPool(sessions.length, setupConcurrency, context.signal, async (i) => {
      await closeSession(sender.messaging, queue, sessions[i] as SessionRef).catch((error) =>
        context.problem(describeError("CloseSession", error)),
      );
    });

    const delivery = summarize(full.latencies);
    const send = summarize(full.sendMs);
    const lowDelivery = summarize(low.latencies);
    return new Figures()
      .add("messages", delivery.count, "msgs", "messages delivered")
      .add("sessions", latencySessions, "sessions", "sessions held, one stream each")
      .add("achievedRate", full.achievedRate, "msgs/s", "send rate achieved")
      .add("skipped", full.skipped, "msgs", `not sent: ${MAX_SENDS_IN_FLIGHT} Sends were in flight`)
      .add("p50Ms", delivery.p50, "ms", "send → delivery p50")
      .add("p99Ms", delivery.p99, "ms", "send → delivery p99")
      .add("p999Ms", delivery.p999, "ms", "send → delivery p99.9")
      .add("maxMs", delivery.max, "ms", "send → delivery max")
      .add("sendP50Ms", send.p50, "ms", "Send call p50")
      .add("sendP99Ms", send.p99, "ms", "Send call p99")
      .add("lowRate", low.achievedRate, "msgs/s", "low-rate phase: send rate achieved")
      .add("lowRateMessages", lowDelivery.count, "msgs", "low-rate phase: messages delivered")
      .add("lowRateP50Ms", lowDelivery.p50, "ms", "low-rate phase: send → delivery p50")
      .add("lowRateP99Ms", lowDelivery.p99, "ms", "low-rate phase: send → delivery p99")
      .add("completed", completed, "msgs", "messages completed (both phases)");
  } finally {
    stop.abort();
    await closePipes();
    await deleteQueue(sender, queue, context.problem);
    sender.close();
    for (const connection of connections) connection.close();
  }
}

type SendOne = (request: {
  entityPath: string;
  messages: { sessionId: string; body: Uint8Array }[];
}) => Promise<unknown>;

/** Sends one message per Send at `perSecond` for `seconds`, round-robin over sessions. */
async function sendAtRate(
  send: SendOne,
  queue: string,
  context: ScenarioContext,
  signal: AbortSignal,
  perSecond: number,
  seconds: number,
): Promise<Omit<PhaseResult, "latencies">> {
  const total = Math.round(perSecond * seconds);
  const sendMs: number[] = [];
  const sends = new Set<Promise<void>>();
  let sent = 0;
  let skipped = 0;
  const sendOne = async (sessionId: string) => {
    const stamp = performance.now();
    try {
      await send({ entityPath: queue, messages: [{ sessionId, body: stampedBody(stamp) }] });
      sendMs.push(performance.now() - stamp);
    } catch (error) {
      context.problem(describeError("Send", error));
    }
  };
  const started = performance.now();
  const plannedEnd = started + seconds * 1000;
  while (performance.now() < plannedEnd && sent + skipped < total && !signal.aborted) {
    const due = Math.min(total, Math.floor(((performance.now() - started) * perSecond) / 1000) + 1);
    while (sent + skipped < due) {
      // A broker that cannot keep up does not get an ever longer queue: sends beyond the
      // cap are skipped, and the achieved rate shows the shortfall.
      if (sends.size >= MAX_SENDS_IN_FLIGHT) {
        skipped++;
        continue;
      }
      const sending = sendOne(`l-${sent % context.sizes.latencySessions}`).finally(() =>
        sends.delete(sending),
      );
      sends.add(sending);
      sent++;
    }
    await sleep(1);
  }
  const achievedRate = rate(sent, performance.now() - started);
  await Promise.all(sends);
  return { sendMs, sent, skipped, achievedRate };
}
