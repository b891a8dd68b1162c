/**
 * Scenario 6 — session state: SetSessionState and GetSessionState of a 4 KiB state, one
 * call at a time under one held session (latency); then a 10 MiB state set and read back
 * `largeStateRounds` times (throughput in MB/s, 1 MB = 10^6 bytes).
 */
import { performance } from "node:perf_hooks";
import {
  acceptNamed,
  CALL_TIMEOUT_MS,
  closeSession,
  createBenchClient,
  createSessionQueue,
  deleteQueue,
  type MessagingClient,
  type SessionRef,
} from "../support/client.js";
import { Figures, type Scenario, type ScenarioContext } from "../support/scenario.js";
import { round, summarize } from "../support/stats.js";

const SMALL_STATE_BYTES = 4 * 1024;
const LARGE_STATE_BYTES = 10 * 1024 * 1024;
const MAX_STATE_BYTES = 16 * 1024 * 1024;
const LARGE_CALL_TIMEOUT_MS = 120_000;
const STATE_WARM_UP_ROUNDS = 50;

export const sessionState: Scenario = {
  id: "sessionState",
  title: "6. Session state (4 KiB get/set latency; 10 MiB throughput)",
  timeoutMs: (sizes) => 60_000 + sizes.stateSamples * 100 + sizes.largeStateRounds * 60_000,
  run,
};

async function run(context: ScenarioContext): Promise<Figures> {
  const { sizes, signal } = context;
  const client = createBenchClient(context.brokerUrl);
  const queue = await createSessionQueue(client, "state", context.problem, {
    maxSessionStateBytes: MAX_STATE_BYTES,
  });
  try {
    const session = await acceptNamed(client.messaging, queue, "state", signal);
    const small = pattern(SMALL_STATE_BYTES, 1);
    const setMs: number[] = [];
    const getMs: number[] = [];
    // Unmeasured rounds first, so the figures are of a warm broker (JIT, connection),
    // whether the scenario runs alone or after the others.
    for (let i = 0; i < STATE_WARM_UP_ROUNDS && !signal.aborted; i++) {
      await setState(client.messaging, queue, session, small);
      await getState(client.messaging, queue, session);
    }
    for (let i = 0; i < sizes.stateSamples && !signal.aborted; i++) {
      small[0] = i % 256;
      setMs.push(await timed(() => setState(client.messaging, queue, session, small)));
      let read: Uint8Array | undefined;
      getMs.push(
        await timed(async () => {
          read = await getState(client.messaging, queue, session);
        }),
      );
      if (!sameBytes(read, small)) context.problem("GetSessionState returned another 4 KiB state");
    }

    let largeSetMs = 0;
    let largeGetMs = 0;
    let rounds = 0;
    for (let i = 0; i < sizes.largeStateRounds && !signal.aborted; i++) {
      const large = pattern(LARGE_STATE_BYTES, i + 2);
      largeSetMs += await timed(() => setState(client.messaging, queue, session, large, true));
      let read: Uint8Array | undefined;
      largeGetMs += await timed(async () => {
        read = await getState(client.messaging, queue, session, true);
      });
      if (!sameBytes(read, large)) context.problem("GetSessionState returned another 10 MiB state");
      rounds++;
    }
    await closeSession(client.messaging, queue, session);

    const set = summarize(setMs);
    const get = summarize(getMs);
    const megabytes = (rounds * LARGE_STATE_BYTES) / 1e6;
    return new Figures()
      .add("samples", set.count, "samples", "4 KiB set and get samples (each)")
      .add("setP50Ms", set.p50, "ms", "set 4 KiB p50")
      .add("setP99Ms", set.p99, "ms", "set 4 KiB p99")
      .add("getP50Ms", get.p50, "ms", "get 4 KiB p50")
      .add("getP99Ms", get.p99, "ms", "get 4 KiB p99")
      .add("largeRounds", rounds, "rounds", "10 MiB set + get rounds")
      .add("largeSetMBps", round(megabytes / (largeSetMs / 1000), 1), "MB/s", "set 10 MiB")
      .add("largeGetMBps", round(megabytes / (largeGetMs / 1000), 1), "MB/s", "get 10 MiB");
  } finally {
    await deleteQueue(client, queue, context.problem);
    client.close();
  }
}

async function setState(
  messaging: MessagingClient,
  entityPath: string,
  session: SessionRef,
  state: Uint8Array,
  large = false,
): Promise<void> {
  await messaging.setSessionState(
    { entityPath, session, state },
    { timeoutMs: large ? LARGE_CALL_TIMEOUT_MS : CALL_TIMEOUT_MS },
  );
}

async function getState(
  messaging: MessagingClient,
  entityPath: string,
  session: SessionRef,
  large = false,
): Promise<Uint8Array | undefined> {
  const { state } = await messaging.getSessionState(
    { entityPath, session },
    { timeoutMs: large ? LARGE_CALL_TIMEOUT_MS : CALL_TIMEOUT_MS },
  );
  return state;
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** `size` bytes that differ from one `seed` to the next. */
function pattern(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) bytes[i] = (seed + i / 4096) % 256;
  return bytes;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.compare(a, b) === 0;
}
