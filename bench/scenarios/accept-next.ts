/**
 * Scenario 4 — accept-next.
 * Wake-up: an accept-next call is waiting on an empty queue; a message is sent to a new
 * session; measured from the Send call to the accept-next call returning with that session.
 * Latency with idle sessions: `idleSmall`, then `idleLarge` sessions that have a state and
 * no messages (created by accepting each by name, setting a 64-byte state and closing,
 * pipelined); a message is sent to a new session, and once Send has returned, AcceptSession
 * (next) is timed. Each sample's message is then received, completed and its session
 * closed, so every sample starts from the same state. Timing starts 2 s after the set-up.
 */
import { performance } from "node:perf_hooks";
import {
  acceptNamed,
  acceptNext,
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
} from "../support/client.js";
import { drainSession } from "../support/drain-session.js";
import { Figures, type Scenario, type ScenarioContext, sleep } from "../support/scenario.js";
import { rate, round, summarize } from "../support/stats.js";

/** How long a sample's accept-next may wait. */
const ACCEPT_WAIT_MS = 10_000;
/** Time for a waiting accept-next call to reach NATS before the message is sent. */
const WAITER_READY_MS = 25;
const IDLE_STATE = new Uint8Array(64).fill(7);
/** Pause between creating idle sessions and timing accepts. */
const QUIET_MS = 2_000;

export const acceptNextScenario: Scenario = {
  id: "acceptNext",
  title: "4. Accept-next (wake-up; latency with idle sessions that have state)",
  // Set-up runs at roughly 100 sessions/s on 2 cores; each sample takes some 50 ms.
  timeoutMs: (sizes) =>
    60_000 + sizes.idleLarge * 25 + (sizes.wakeupSamples + 2 * sizes.acceptSamples) * 500,
  run,
};

async function run(context: ScenarioContext): Promise<Figures> {
  const { sizes, signal } = context;
  const client = createBenchClient(context.brokerUrl);
  const setupClient = createBenchClient(context.brokerUrl);
  const queue = await createSessionQueue(client, "accept", context.problem);
  let sample = 0;
  const nextSessionId = () => `a-${sample++}`;
  try {
    const wakeups: number[] = [];
    for (let i = 0; i < sizes.wakeupSamples && !signal.aborted; i++) {
      const taken = await wakeUp(client, queue, nextSessionId(), context);
      if (taken !== undefined) wakeups.push(taken);
    }
    context.log(`wake-up: ${wakeups.length} samples`);

    const small = await createIdle(setupClient, queue, 0, sizes.idleSmall, context);
    const smallAccepts = await acceptSamples(client, queue, nextSessionId, context);
    const large = await createIdle(setupClient, queue, sizes.idleSmall, sizes.idleLarge, context);
    const largeAccepts = await acceptSamples(client, queue, nextSessionId, context);

    const wakeup = summarize(wakeups);
    const smallSummary = summarize(smallAccepts);
    const largeSummary = summarize(largeAccepts);
    return new Figures()
      .add("wakeupSamples", wakeup.count, "samples", "wake-up samples")
      .add("wakeupP50Ms", wakeup.p50, "ms", "send → waiting accept-next returns, p50")
      .add("wakeupP99Ms", wakeup.p99, "ms", "send → waiting accept-next returns, p99")
      .add("idleSmall", sizes.idleSmall, "sessions", "idle sessions with state (small)")
      .add("setupSmallSeconds", small.seconds, "s", "creating them (accept, set state, close)")
      .add("setupSmallPerSec", small.perSecond, "sessions/s", "set-up rate (small)")
      .add("acceptSmallP50Ms", smallSummary.p50, "ms", "accept-next latency p50 (small)")
      .add("acceptSmallP99Ms", smallSummary.p99, "ms", "accept-next latency p99 (small)")
      .add("idleLarge", sizes.idleLarge, "sessions", "idle sessions with state (large)")
      .add("setupLargeSeconds", large.seconds, "s", "creating the additional ones")
      .add("setupLargePerSec", large.perSecond, "sessions/s", "set-up rate (large)")
      .add("acceptLargeP50Ms", largeSummary.p50, "ms", "accept-next latency p50 (large)")
      .add("acceptLargeP99Ms", largeSummary.p99, "ms", "accept-next latency p99 (large)")
      .add("acceptRatioP50", round(largeSummary.p50 / smallSummary.p50), "×", "large / small, p50")
      .add("acceptRatioP99", round(largeSummary.p99 / smallSummary.p99), "×", "large / small, p99");
  } finally {
    await deleteQueue(client, queue, context.problem);
    client.close();
    setupClient.close();
  }
}

/** One wake-up sample in ms, or undefined when it failed. */
async function wakeUp(
  client: BenchClient,
  queue: string,
  sessionId: string,
  context: ScenarioContext,
): Promise<number | undefined> {
  const waiting = acceptNext(client.messaging, queue, ACCEPT_WAIT_MS, context.signal).then(
    (session) => ({ session, at: performance.now() }),
  );
  waiting.catch(() => undefined);
  await sleep(WAITER_READY_MS, context.signal);
  const sentAt = performance.now();
  try {
    await send(client, queue, sessionId);
    const { session, at } = await waiting;
    if (session === undefined) throw new Error("accept-next found no session");
    await finish(client, queue, session, context);
    if (session.sessionId !== sessionId) {
      context.problem(`accept-next woke with session "${session.sessionId}", not "${sessionId}"`);
      return undefined;
    }
    return at - sentAt;
  } catch (error) {
    if (!context.signal.aborted) context.problem(describeError("wake-up sample", error));
    return undefined;
  }
}

/** Accept-next latency samples with a session ready each time. */
async function acceptSamples(
  client: BenchClient,
  queue: string,
  nextSessionId: () => string,
  context: ScenarioContext,
): Promise<number[]> {
  // The set-up's consumer deletions and writes finish in NATS first.
  await sleep(QUIET_MS, context.signal);
  const samples: number[] = [];
  for (let i = 0; i < context.sizes.acceptSamples && !context.signal.aborted; i++) {
    const sessionId = nextSessionId();
    try {
      await send(client, queue, sessionId);
      const started = performance.now();
      const session = await acceptNext(client.messaging, queue, ACCEPT_WAIT_MS, context.signal);
      const took = performance.now() - started;
      if (session === undefined) throw new Error("accept-next found no session");
      await finish(client, queue, session, context);
      if (session.sessionId === sessionId) samples.push(took);
      else
        context.problem(`accept-next returned session "${session.sessionId}", not "${sessionId}"`);
    } catch (error) {
      if (!context.signal.aborted) context.problem(describeError("accept sample", error));
    }
  }
  return samples;
}

/** Sessions `from`..`to`-1 get a state and are closed, `setupConcurrency` at a time. */
async function createIdle(
  client: BenchClient,
  queue: string,
  from: number,
  to: number,
  context: ScenarioContext,
): Promise<{ seconds: number; perSecond: number }> {
  const started = performance.now();
  let created = 0;
  await runPool(to - from, context.sizes.setupConcurrency, context.signal, async (i) => {
    try {
      const session = await acceptNamed(
        client.messaging,
        queue,
        `idle-${from + i}`,
        context.signal,
      );
      await client.messaging.setSessionState(
        { entityPath: queue, session, state: IDLE_STATE },
        { timeoutMs: CALL_TIMEOUT_MS },
      );
      await closeSession(client.messaging, queue, session);
      created++;
    } catch (error) {
      if (!context.signal.aborted) context.problem(describeError("idle session set-up", error));
    }
  });
  const elapsed = performance.now() - started;
  if (created < to - from) context.problem(`created ${created} of ${to - from} idle sessions`);
  context.log(`${to} idle sessions (${created} created in ${round(elapsed / 1000, 1)} s)`);
  return { seconds: round(elapsed / 1000, 2), perSecond: rate(created, elapsed) };
}

async function send(client: BenchClient, queue: string, sessionId: string): Promise<void> {
  await client.messaging.send(
    { entityPath: queue, messages: [{ sessionId, body: stampedBody(performance.now()) }] },
    { timeoutMs: CALL_TIMEOUT_MS },
  );
}

/** Receives and completes the sample's one message, then closes the session. */
async function finish(
  client: BenchClient,
  queue: string,
  session: SessionRef,
  context: ScenarioContext,
): Promise<void> {
  const drained = await drainSession(client.messaging, queue, session, {
    prefetch: 1,
    idleWaitMs: 5_000,
    maxMessages: 1,
    signal: context.signal,
    onCompleted: () => {},
    onProblem: context.problem,
  });
  if (drained.received !== 1) context.problem(`session ${session.sessionId}: no message received`);
  await closeSession(client.messaging, queue, session);
}
