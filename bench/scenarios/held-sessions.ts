/**
 * Scenario 5 — memory of held sessions: the broker's RSS (VmRSS of /proc/<pid>/status)
 * before and with `heldSessions` sessions accepted by name and held; then with a receive
 * stream open on `receivingSessions` of them as well (once the RSS stops growing). Per
 * session: the growth over the "before" figure; per stream: over the "held" one. It runs
 * on a newly started broker, whose heap has not grown and shrunk before. RSS includes
 * garbage not yet collected, so the live heap after a full GC in the broker (triggered
 * through bench/support/broker-memory-probe.mjs) is reported too. At the end the queue is
 * deleted with the sessions still held.
 */
import { performance } from "node:perf_hooks";
import {
  acceptNamed,
  type BenchClient,
  createBenchClient,
  createSessionQueue,
  deleteQueue,
  describeError,
  runPool,
  type SessionRef,
} from "../support/client.js";
import { drainSession } from "../support/drain-session.js";
import { residentBytes } from "../support/processes.js";
import {
  anySignal,
  Figures,
  type Scenario,
  type ScenarioContext,
  sleep,
} from "../support/scenario.js";
import { rate, round } from "../support/stats.js";

const MIB = 1024 * 1024;
const FULL_HELD_SESSIONS = 10_000;
/** Long enough that no lock expires while the others are being accepted. */
const LOCK_DURATION_MS = 5 * 60_000;
/** Pause before reading RSS, for allocation to settle. */
const SETTLE_MS = 1_000;
const STREAMS_PER_CONNECTION = 1_000;

export const heldSessions: Scenario = {
  id: "heldSessions",
  title: "5. Held sessions: broker memory",
  freshBroker: true,
  timeoutMs: (sizes) => 60_000 + sizes.heldSessions * 30,
  run,
};

async function run(context: ScenarioContext): Promise<Figures> {
  const { heldSessions: count, setupConcurrency } = context.sizes;
  const client = createBenchClient(context.brokerUrl);
  const connections = Array.from({ length: Math.ceil(count / STREAMS_PER_CONNECTION) }, () =>
    createBenchClient(context.brokerUrl),
  );
  const stopStreams = new AbortController();
  const queue = await createSessionQueue(client, "held", context.problem, {
    lockDurationMs: LOCK_DURATION_MS,
  });
  try {
    await sleep(SETTLE_MS, context.signal);
    const before = await residentBytes(context.brokerPid);
    const heapBefore = (await context.brokerMemoryAfterGc()).heapUsed;

    const sessions: SessionRef[] = [];
    const started = performance.now();
    await runPool(count, setupConcurrency, context.signal, async (i) => {
      try {
        sessions.push(await acceptNamed(client.messaging, queue, `h-${i}`, context.signal));
      } catch (error) {
        if (!context.signal.aborted) context.problem(describeError("AcceptSession (named)", error));
      }
    });
    const acceptMs = performance.now() - started;
    await sleep(SETTLE_MS, context.signal);
    const held = await residentBytes(context.brokerPid);
    const heldGc = await context.brokerMemoryAfterGc();
    const heapHeld = heldGc.heapUsed;

    const perSession = (bytes: number) =>
      sessions.length > 0 ? bytes / sessions.length / 1024 : Number.NaN;
    const at10k = (bytes: number) =>
      round((before + ((bytes - before) / sessions.length) * FULL_HELD_SESSIONS) / MIB, 1);
    const figures = new Figures()
      .add("held", sessions.length, "sessions", "sessions held")
      .add(
        "acceptPerSec",
        rate(sessions.length, acceptMs),
        "sessions/s",
        "named accepts, pipelined",
      )
      .add("rssBeforeMiB", round(before / MIB, 1), "MiB", "broker RSS before")
      .add("rssHeldMiB", round(held / MIB, 1), "MiB", "broker RSS, sessions held")
      .add("perHeldSessionKiB", round(perSession(held - before), 1), "KiB", "RSS per held session")
      .add(
        "heldExtrapolated10kMiB",
        at10k(held),
        "MiB",
        "RSS at 10,000 held, extrapolated (linear)",
      )
      .add("heapBeforeMiB", round(heapBefore / MIB, 1), "MiB", "live heap after GC, before")
      .add("heapHeldMiB", round(heapHeld / MIB, 1), "MiB", "live heap after GC, held");

    // A receive stream on `receivingSessions` of them: a phase of its own, whose failure
    // (with 10,000 streams nats-server may stop answering in time) keeps the figures above.
    const receivers = sessions.slice(0, context.sizes.receivingSessions);
    try {
      const signal = anySignal(context.signal, stopStreams.signal);
      const streams = receivers.map((session, i) =>
        drainSession(
          (connections[Math.floor(i / STREAMS_PER_CONNECTION)] as BenchClient).messaging,
          queue,
          session,
          {
            prefetch: 1,
            idleWaitMs: 0,
            signal,
            onCompleted: () => {},
            onProblem: context.problem,
          },
        ),
      );
      // Opening thousands of streams takes a while: wait until the RSS stops growing.
      const receiving = await settledResidentBytes(context.brokerPid, context.signal);
      const afterGc = await context.brokerMemoryAfterGc();
      stopStreams.abort();
      await Promise.all(streams);
      const perStream = (bytes: number) => bytes / receivers.length / 1024;
      figures
        .add("receiving", receivers.length, "sessions", "of them with a receive stream")
        .add("rssReceivingMiB", round(receiving / MIB, 1), "MiB", "… RSS with those streams")
        // Per stream: over the RSS right after the full GC that followed the "held" reading.
        .add(
          "perStreamKiB",
          round(perStream(receiving - heldGc.rss), 1),
          "KiB",
          "RSS per receive stream",
        )
        .add(
          "extrapolated10kMiB",
          round(
            (held + (receiving - heldGc.rss) * (FULL_HELD_SESSIONS / receivers.length)) / MIB,
            1,
          ),
          "MiB",
          "RSS with 10,000 held and receiving",
        )
        .add("heapReceivingMiB", round(afterGc.heapUsed / MIB, 1), "MiB", "… live heap after GC")
        .add(
          "heapPerStreamKiB",
          round(perStream(afterGc.heapUsed - heapHeld), 1),
          "KiB",
          "live heap per receive stream",
        )
        .add("rssAfterGcMiB", round(afterGc.rss / MIB, 1), "MiB", "RSS right after that GC");
    } catch (error) {
      context.problem(`receive streams on ${receivers.length} held sessions: ${String(error)}`);
    }
    return figures;
  } finally {
    stopStreams.abort();
    await deleteQueue(client, queue, context.problem);
    client.close();
    for (const connection of connections) connection.close();
  }
}

/** RSS once it stops growing: two readings a second apart within 1 %, or after 60 s. */
async function settledResidentBytes(pid: number, signal: AbortSignal): Promise<number> {
  let last = await residentBytes(pid);
  for (let waited = 0; waited < 60; waited++) {
    await sleep(SETTLE_MS, signal);
    const now = await residentBytes(pid);
    if (Math.abs(now - last) <= now * 0.01) return now;
    last = now;
  }
  return last;
}
