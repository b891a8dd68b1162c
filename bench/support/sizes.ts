/** How big each scenario runs: presets per scale, which command-line flags override. */

export type Scale = "tiny" | "default" | "full";

export interface Sizes {
  /** Scenario 1: messages published to the raw stream. */
  rawMessages: number;
  /** Scenario 1: publishes awaiting their ack at once. */
  rawInFlight: number;
  /** Scenario 2: sessions, each with `messagesPerSession` messages. */
  sessions: number;
  messagesPerSession: number;
  /** Scenario 2: messages per Send call. */
  sendBatch: number;
  /** Scenario 2: Send calls in flight at once. */
  sendsInFlight: number;
  /** Scenario 2: concurrent accept-next receivers. */
  receivers: number;
  /** Scenarios 2 and 3: receive credit per stream. */
  prefetch: number;
  /** Scenario 2: max_wait of a session's receive stream; the session closes after it. */
  idleWaitMs: number;
  /** Scenario 3: messages per second, over `latencySessions` sessions, for `latencySeconds`. */
  latencyRate: number;
  latencySessions: number;
  latencySeconds: number;
  /** Scenario 4: send → accept-next wake-up samples. */
  wakeupSamples: number;
  /** Scenario 4: accept-next latency samples at each idle-session count. */
  acceptSamples: number;
  /** Scenario 4: idle sessions with state, the small and the large count. */
  idleSmall: number;
  idleLarge: number;
  /** Scenario 4 and 5: requests in flight while creating or accepting many sessions. */
  setupConcurrency: number;
  /** Scenario 5: sessions held open at once. */
  heldSessions: number;
  /** Scenario 5: of those, how many get a receive stream as well. */
  receivingSessions: number;
  /** Scenario 6: get and set samples of a 4 KiB state. */
  stateSamples: number;
  /** Scenario 6: set + get rounds of a 10 MiB state. */
  largeStateRounds: number;
  /** Scenario 7: measured calls per server and method (after up to 2,000 to warm up). */
  rpcCalls: number;
  /** Scenario 8: measured `sessionbus --help` runs. */
  cliRuns: number;
  /** Scenario 9, with each replica count: scenario 2's sessions and messages per session. */
  replicaSessions: number;
  replicaMessagesPerSession: number;
  /** Scenario 9, with each replica count: scenario 3's rate (msgs/s) and seconds. */
  replicaLatencyRate: number;
  replicaLatencySeconds: number;
}

const DEFAULT_SIZES: Sizes = {
  rawMessages: 20_000,
  rawInFlight: 2_000,
  sessions: 200,
  messagesPerSession: 50,
  sendBatch: 500,
  sendsInFlight: 4,
  receivers: 32,
  prefetch: 100,
  idleWaitMs: 200,
  latencyRate: 1_000,
  latencySessions: 100,
  latencySeconds: 10,
  wakeupSamples: 100,
  acceptSamples: 50,
  idleSmall: 1_000,
  idleLarge: 10_000,
  setupConcurrency: 64,
  heldSessions: 10_000,
  receivingSessions: 1_000,
  stateSamples: 300,
  largeStateRounds: 3,
  rpcCalls: 20_000,
  cliRuns: 10,
  replicaSessions: 100,
  replicaMessagesPerSession: 50,
  replicaLatencyRate: 200,
  replicaLatencySeconds: 10,
};

export const PRESETS: Record<Scale, Sizes> = {
  tiny: {
    ...DEFAULT_SIZES,
    rawMessages: 2_000,
    rawInFlight: 500,
    sessions: 16,
    messagesPerSession: 10,
    sendBatch: 40,
    receivers: 8,
    latencyRate: 200,
    latencySessions: 10,
    latencySeconds: 1,
    wakeupSamples: 5,
    acceptSamples: 5,
    idleSmall: 20,
    idleLarge: 60,
    setupConcurrency: 16,
    heldSessions: 30,
    receivingSessions: 10,
    stateSamples: 20,
    largeStateRounds: 1,
    rpcCalls: 2_000,
    cliRuns: 5,
    replicaSessions: 8,
    replicaMessagesPerSession: 10,
    replicaLatencyRate: 50,
    replicaLatencySeconds: 1,
  },
  default: DEFAULT_SIZES,
  full: {
    ...DEFAULT_SIZES,
    rawMessages: 100_000,
    sessions: 1_000,
    messagesPerSession: 100,
    latencySeconds: 60,
    wakeupSamples: 1_000,
    acceptSamples: 200,
    idleLarge: 100_000,
    heldSessions: 10_000,
    receivingSessions: 10_000,
    stateSamples: 1_000,
    largeStateRounds: 5,
    cliRuns: 20,
    replicaSessions: 400,
    replicaMessagesPerSession: 100,
    replicaLatencySeconds: 30,
  },
};
