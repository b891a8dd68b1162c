/**
 * A load of sessions for failure tests on a cluster (cluster-*.test.ts): senders that keep
 * sending to every session while a test kills or restarts something, a session processor
 * completing as it goes, and the record to check the three zeros against.
 *
 * ```ts
 * const load = startSessionLoad({ sender: sdk, receiver: sdk, queue, sessions: 50, minPerSession: 20 });
 * await load.waitFor(() => load.acknowledged.size >= 300, 60_000, "300 sends");
 * const killedAt = Date.now(); …; await load.waitForSendAfter(killedAt, 60_000);
 * const result = await load.finish(120_000); // stops sending, drains, stops the processor
 * expect(result.lost).toEqual([]); // and result.orderViolations, duplicateCompletions, overlaps
 * ```
 *
 * What is counted, and how:
 *
 * - **Acknowledged sends**: each message is sent on its own, with the body `<session>:<index>`
 *   and a message id new at each attempt (`<session>:<index>:<attempt>`). A session's index
 *   n + 1 is sent only after index n was acknowledged; an attempt that fails is tried again
 *   with a new id (the failed one may or may not be stored: then the session holds two
 *   copies of that index, next to each other). The queue has duplicate detection, so the
 *   SDK's own repeat of a Send on the next broker (same id) cannot store a copy.
 * - **Completions**: the handler completes every message; a completion that fails without
 *   losing the lock (`STORE_UNAVAILABLE`, a deadline) is tried again while the session is
 *   held, and `MESSAGE_ALREADY_SETTLED` on a retry means the first try was done. A
 *   completion counts once the broker acknowledged it. One that failed with a lost lock
 *   is "unknown": the message comes back if the completion was not done.
 * - **Lost**: acknowledged by Send, and at the end neither completed with an acknowledgement
 *   nor "unknown"; and `finish` also waits until a peek of the queue finds nothing left, so
 *   an "unknown" completion was in fact done.
 * - **Order**: per session, the indices of first acknowledged completions, in the order of
 *   their acknowledgements, never go down; the same index twice is allowed only for two
 *   different message ids (the copies of a failed attempt).
 * - **Duplicates** (exactly-once completion): a message id with two acknowledged
 *   completions, listed with the times of both. A message redelivered after a completion
 *   that failed is at least once and not listed; one redelivered after a completion the
 *   broker acknowledged is, and its second completion is left out of the order check (it
 *   comes after later messages of its session; the test says which duplicates it allows).
 * - **Holders**: each acceptance of a session is an interval from sessionInitializing to
 *   sessionClosing, or to its lock's end as the client knew it then, if earlier (a holder
 *   whose renewals failed during a store outage closes the session once it hears of the
 *   failure, seconds after its lock ended; the broker took nothing from it after that end,
 *   and another receiver could accept the session meanwhile). A session lost with its lock
 *   (a dead broker, a renewal that failed) never gets sessionClosing and is held until the
 *   loss was reported (the processor stops using it then, and closes it), or until its
 *   lock's end as the client knew it then, if earlier; one whose loss was never reported,
 *   until its lock's end as the client last knew it. A renewal answered after the loss was reported does not extend the interval
 *   (seen on a loaded machine: a renewal whose record write took over 2 s, the receive
 *   stream meanwhile reading the record before that write and ending with
 *   SESSION_LOCK_LOST, the renewal then answered, and the processor's close releasing
 *   the session). No two intervals of one session overlap.
 */
import { setMaxListeners } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import {
  createSessionProcessor,
  MessageAlreadySettledError,
  MessageLockLostError,
  type ProcessorSession,
  type SessionBusClient,
  SessionLockLostError,
  type SessionProcessor,
} from "../../src/client/index.js";

export interface SessionLoadOptions {
  /** Client of the senders. */
  sender: SessionBusClient;
  /** Client of the session processor. @default sender */
  receiver?: SessionBusClient;
  /** A session queue with duplicate detection. */
  queue: string;
  /** @default 50 */
  sessions?: number;
  /** Messages each session gets at least; sending goes on until finish() too. @default 20 */
  minPerSession?: number;
  /** Each session's sender waits this long between two acknowledged sends. @default 400 */
  sendIntervalMs?: number;
  /** @default 16 */
  maxConcurrentSessions?: number;
  /** @default 1_000 */
  sessionIdleTimeoutMs?: number;
}

export interface Acknowledged {
  messageId: string;
  sessionId: string;
  index: number;
  at: number;
  /** The stream sequence number Send answered. */
  sequence: number;
}

interface Holding {
  session: ProcessorSession;
  sessionId: string;
  from: number;
  to: number;
  closed: boolean;
  /** When the processor reported the lock lost, and the lock's end as known then. */
  lost?: { at: number; lockedUntil: number };
}

interface Completion {
  messageId: string;
  sessionId: string;
  index: number;
  at: number;
  /** The stream sequence number it was delivered with. */
  sequence: number;
  /** A second acknowledged completion of the message. */
  again?: boolean;
}

/** A message completed twice, both times acknowledged. */
export interface DuplicateCompletion {
  messageId: string;
  /** When the first completion was acknowledged. */
  firstAt: number;
  againAt: number;
  /**
   * The sequence numbers of the two deliveries: the same one, a completed message given
   * back; two, the message stored twice (a Send repeated with its id and not detected).
   */
  firstSequence: number;
  againSequence: number;
}

export interface SessionLoadResult {
  acknowledgedSends: number;
  completions: number;
  /** Completions whose outcome was not known; each was checked done by an empty queue. */
  unknownCompletions: number;
  redeliveries: number;
  lost: string[];
  orderViolations: string[];
  duplicateCompletions: DuplicateCompletion[];
  overlaps: string[];
  /** Longest time with no acknowledged send or completion, and when it began. */
  longestPause: { ms: number; from: number };
  /** Send attempts that failed (tried again with a new id), by error name. */
  sendFailures: Record<string, number>;
  /** What the processor reported, by source and error name. */
  processorErrors: Record<string, number>;
}

export interface SessionLoad {
  readonly acknowledged: ReadonlyMap<string, Acknowledged>;
  readonly completed: ReadonlyMap<string, Completion>;
  /** Resolves when `done()` holds, checked after every event; rejects after `boundMs`. */
  waitFor(done: () => boolean, boundMs: number, what: string): Promise<void>;
  /**
   * Resolves with the time of the first acknowledged send that was started after `at` (a
   * send needs the message stream's leader; a completion may not, its session's consumer
   * may lead elsewhere). A send already under way at `at` does not count: its publish may
   * have reached a majority before a kill at `at`, and says nothing about the election.
   */
  waitForSendAfter(at: number, boundMs: number): Promise<number>;
  /**
   * Stops sending (once every session has minPerSession), waits until every acknowledged
   * send is accounted for and the queue is empty, stops the processor, and checks.
   */
  finish(boundMs: number): Promise<SessionLoadResult>;
  /** Stops everything without checking (after a failure). */
  abort(): Promise<void>;
  /**
   * What the load is doing now, for a failure's report: the processor's errors so far, the
   * sessions it holds, and the sessions with acknowledged sends not yet completed.
   */
  describe(): string;
}

/**
 * The three zeros of a result as one value, so that one assertion shows every zero that did
 * not hold: `expect(violations(result)).toEqual(NO_VIOLATIONS)`.
 */
export function violations(result: SessionLoadResult) {
  const { lost, orderViolations, duplicateCompletions, overlaps } = result;
  return { lost, orderViolations, duplicateCompletions, overlaps };
}

export const NO_VIOLATIONS: ReturnType<typeof violations> = {
  lost: [],
  orderViolations: [],
  duplicateCompletions: [],
  overlaps: [],
};

const sessionName = (i: number) => `s${String(i).padStart(2, "0")}`;
/** Between two attempts of a Send or a completion that failed. */
const RETRY_MS = 200;

export function startSessionLoad(options: SessionLoadOptions): SessionLoad {
  const sessions = options.sessions ?? 50;
  const minPerSession = options.minPerSession ?? 20;
  const sendIntervalMs = options.sendIntervalMs ?? 400;
  const receiverClient = options.receiver ?? options.sender;

  const acknowledged = new Map<string, Acknowledged>();
  const completed = new Map<string, Completion>();
  const completionsInOrder: Completion[] = [];
  const unknown = new Set<string>();
  const holdings = new Map<ProcessorSession, Holding>();
  const successes: number[] = [];
  /** Acknowledged sends: when the attempt started and when it was acknowledged. */
  const sendSuccesses: { started: number; at: number }[] = [];
  const sendFailures: Record<string, number> = {};
  const processorErrors: Record<string, number> = {};
  const duplicateCompletions: DuplicateCompletion[] = [];
  const deliveredIds = new Set<string>();
  let redeliveries = 0;
  const perSessionAcked = new Map<string, number>();
  const loadStart = Date.now();
  /** What happened to each session's holders, to explain an overlap: "<ms from start> <event>". */
  const sessionEvents = new Map<string, string[]>();
  const sessionEvent = (sessionId: string | undefined, event: string) => {
    if (sessionId === undefined) return;
    const events = sessionEvents.get(sessionId) ?? [];
    events.push(`${Date.now() - loadStart} ${event}`);
    sessionEvents.set(sessionId, events);
  };

  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of waiters) waiter();
  };
  const success = () => {
    successes.push(Date.now());
    notify();
  };

  let sending = true;
  const stopSending = new AbortController();
  // Every session's send loop waits on it at once.
  setMaxListeners(0, stopSending.signal);
  const sender = options.sender.sender(options.queue);
  const sendLoop = async (sessionId: string) => {
    for (let index = 1; ; index++) {
      if (!sending && (perSessionAcked.get(sessionId) ?? 0) >= minPerSession) return;
      for (let attempt = 1; ; attempt++) {
        const messageId = `${sessionId}:${index}:${attempt}`;
        const started = Date.now();
        try {
          const sent = await sender.send({ sessionId, messageId, body: `${sessionId}:${index}` });
          acknowledged.set(messageId, {
            messageId,
            sessionId,
            index,
            at: Date.now(),
            sequence: Number(sent.sequenceNumber),
          });
          perSessionAcked.set(sessionId, index);
          sendSuccesses.push({ started, at: Date.now() });
          success();
          break;
        } catch (error) {
          const name = (error as Error).name ?? "Error";
          sendFailures[name] = (sendFailures[name] ?? 0) + 1;
          await delay(RETRY_MS);
        }
      }
      await delay(sendIntervalMs * (0.5 + Math.random()), undefined, {
        signal: stopSending.signal,
      }).catch(() => undefined);
    }
  };
  const senders = Promise.all(Array.from({ length: sessions }, (_, i) => sendLoop(sessionName(i))));

  const complete = (messageId: string, sessionId: string, index: number, sequence: number) => {
    const completion = { messageId, sessionId, index, at: Date.now(), sequence };
    const first = completed.get(messageId);
    if (first !== undefined) {
      duplicateCompletions.push({
        messageId,
        firstAt: first.at,
        againAt: completion.at,
        firstSequence: first.sequence,
        againSequence: sequence,
      });
      completionsInOrder.push({ ...completion, again: true });
      success();
      return;
    }
    completed.set(messageId, completion);
    completionsInOrder.push(completion);
    unknown.delete(messageId);
    success();
  };

  const processor: SessionProcessor = createSessionProcessor(
    receiverClient,
    options.queue,
    {
      sessionInitializing(session) {
        sessionEvent(
          session.sessionId,
          `accepted, locked until ${session.lockedUntil.getTime() - loadStart}`,
        );
        holdings.set(session, {
          session,
          sessionId: session.sessionId,
          from: Date.now(),
          to: Number.POSITIVE_INFINITY,
          closed: false,
        });
      },
      sessionClosing(session) {
        sessionEvent(session.sessionId, "closing");
        const holding = holdings.get(session);
        if (holding) {
          holding.to = Math.min(Date.now(), session.lockedUntil.getTime());
          holding.closed = true;
        }
      },
      async processMessage(context) {
        const messageId = context.message.messageId;
        const [sessionId = "", index = "0"] = String(Buffer.from(context.message.body)).split(":");
        if (deliveredIds.has(messageId)) redeliveries++;
        deliveredIds.add(messageId);
        for (;;) {
          try {
            await context.complete();
            complete(messageId, sessionId, Number(index), Number(context.message.sequenceNumber));
            return;
          } catch (error) {
            if (error instanceof MessageAlreadySettledError) {
              complete(messageId, sessionId, Number(index), Number(context.message.sequenceNumber));
              return;
            }
            if (error instanceof SessionLockLostError || error instanceof MessageLockLostError) {
              if (!completed.has(messageId)) unknown.add(messageId);
              notify();
              return;
            }
            const name = `complete ${(error as Error).name}`;
            processorErrors[name] = (processorErrors[name] ?? 0) + 1;
            if (Date.now() > context.session.lockedUntil.getTime()) {
              if (!completed.has(messageId)) unknown.add(messageId);
              notify();
              return;
            }
            await delay(RETRY_MS);
          }
        }
      },
      processError(error, info) {
        const name = `${info.source} ${(error as Error).name}`;
        sessionEvent(info.sessionId, name);
        if (error instanceof SessionLockLostError) {
          // The oldest holding of the session not yet ended: a loss can be reported after
          // the session was accepted again.
          const holding = [...holdings.values()].find(
            (h) => h.sessionId === info.sessionId && !h.closed && h.lost === undefined,
          );
          if (holding && holding.lost === undefined) {
            holding.lost = { at: Date.now(), lockedUntil: holding.session.lockedUntil.getTime() };
          }
        }
        processorErrors[name] = (processorErrors[name] ?? 0) + 1;
      },
    },
    {
      maxConcurrentSessions: options.maxConcurrentSessions ?? 16,
      sessionIdleTimeoutMs: options.sessionIdleTimeoutMs ?? 1_000,
    },
  );
  const started = processor.start();

  const waitFor = async (done: () => boolean, boundMs: number, what: string) => {
    if (done()) return;
    let waiter = () => {};
    const reached = new Promise<void>((resolve) => {
      waiter = () => {
        if (done()) resolve();
      };
    });
    waiters.add(waiter);
    // Conditions on the clock or the store are not events: look again every 500 ms too.
    const ticker = setInterval(waiter, 500);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        reached,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`timed out after ${boundMs} ms waiting for ${what}`)),
            boundMs,
          );
        }),
      ]);
    } finally {
      waiters.delete(waiter);
      clearInterval(ticker);
      clearTimeout(timer);
    }
  };

  const firstSendAfter = (at: number) => {
    let first: number | undefined;
    for (const send of sendSuccesses) {
      if (send.started > at && (first === undefined || send.at < first)) first = send.at;
    }
    return first;
  };

  const abort = async () => {
    sending = false;
    stopSending.abort();
    await started.catch(() => undefined);
    await processor.close();
  };

  return {
    acknowledged,
    completed,
    waitFor,
    async waitForSendAfter(at, boundMs) {
      await waitFor(() => firstSendAfter(at) !== undefined, boundMs, "a send to succeed");
      return firstSendAfter(at) as number;
    },
    async finish(boundMs) {
      const deadline = Date.now() + boundMs;
      const left = () => Math.max(0, deadline - Date.now());
      sending = false;
      stopSending.abort();
      await Promise.race([
        senders,
        waitFor(() => false, left(), "the senders to send every session's minimum"),
      ]);
      const accounted = () =>
        [...acknowledged.keys()].every((id) => completed.has(id) || unknown.has(id));
      await waitFor(accounted, left(), "every acknowledged send completed");
      // What is still stored: copies of failed attempts, unknown completions not done.
      let empty = false;
      while (!empty) {
        await waitFor(accounted, left(), "every acknowledged send completed");
        const peeked = await receiverClient.peek(options.queue, { maxMessages: 10 }).then(
          (messages) => messages,
          () => undefined,
        );
        empty = peeked !== undefined && peeked.length === 0;
        if (!empty) {
          if (left() === 0) throw new Error("the queue still holds messages at the bound");
          await delay(500);
        }
      }
      await started;
      await processor.close();
      return check();
    },
    abort,
    describe,
  };

  function describe(): string {
    const now = Date.now();
    const at = (time: number) => time - loadStart;
    const held = [...holdings.values()].filter((h) => !h.closed && h.lost === undefined);
    const waiting = new Map<string, string[]>();
    for (const [id, send] of acknowledged) {
      if (!completed.has(id) && !unknown.has(id)) {
        const ids = waiting.get(send.sessionId) ?? [];
        ids.push(`${id} (sequence ${send.sequence}, acknowledged at ${at(send.at)} ms)`);
        waiting.set(send.sessionId, ids);
      }
    }
    const lastSuccess = successes.length > 0 ? at(Math.max(...successes)) : "never";
    const lines = [
      `load at ${at(now)} ms: ${acknowledged.size} sends acknowledged, ${completed.size} completed, ${unknown.size} unknown; last acknowledged send or completion at ${lastSuccess} ms`,
      `send failures ${JSON.stringify(sendFailures)}; processor errors ${JSON.stringify(processorErrors)}`,
      `held now (${held.length}): ${held.map((h) => `${h.sessionId} since ${at(h.from)} ms, locked until ${at(h.session.lockedUntil.getTime())} ms`).join("; ")}`,
      `sessions with acknowledged sends not completed (${waiting.size}): ${[...waiting].map(([id, ids]) => `${id} ${ids.length}: ${ids.slice(0, 3).join(", ")}`).join("; ")}`,
    ];
    // The story of a few waiting sessions: whether they were ever accepted again.
    for (const sessionId of [...waiting.keys()].slice(0, 3)) {
      lines.push(
        `${sessionId} events: ${(sessionEvents.get(sessionId) ?? []).slice(-8).join(", ")}`,
      );
    }
    return lines.join("\n");
  }

  function check(): SessionLoadResult {
    const lost = [...acknowledged.keys()].filter((id) => !completed.has(id) && !unknown.has(id));

    const orderViolations: string[] = [];
    const last = new Map<string, Completion>();
    for (const completion of completionsInOrder) {
      // A duplicate is counted as one, not again as a step back in order.
      if (completion.again) continue;
      const before = last.get(completion.sessionId);
      if (
        before !== undefined &&
        (completion.index < before.index ||
          (completion.index === before.index && completion.messageId === before.messageId))
      ) {
        orderViolations.push(
          `${completion.sessionId}: ${completion.messageId} (sequence ${completion.sequence}) completed at ${completion.at - loadStart} ms after ${before.messageId} (sequence ${before.sequence}) at ${before.at - loadStart} ms; its events: ${(sessionEvents.get(completion.sessionId) ?? []).join(", ")}`,
        );
      }
      last.set(completion.sessionId, completion);
    }

    const overlaps: string[] = [];
    const bySession = new Map<string, Holding[]>();
    for (const holding of holdings.values()) {
      if (!holding.closed) {
        holding.to = holding.lost
          ? Math.min(holding.lost.at, holding.lost.lockedUntil)
          : holding.session.lockedUntil.getTime();
      }
      bySession.set(holding.sessionId, [...(bySession.get(holding.sessionId) ?? []), holding]);
    }
    for (const [sessionId, list] of bySession) {
      const sorted = [...list].sort((a, b) => a.from - b.from);
      for (let i = 1; i < sorted.length; i++) {
        const before = sorted[i - 1] as Holding;
        const after = sorted[i] as Holding;
        if (after.from < before.to) {
          const at = (time: number) => time - loadStart;
          overlaps.push(
            `${sessionId}: accepted at ${at(after.from)} ms while held ${at(before.from)}–${at(before.to)} ms (${before.closed ? "closed, or its lock ended, then" : before.lost ? "lock lost" : "locked until then"}); its events: ${(sessionEvents.get(sessionId) ?? []).join(", ")}`,
          );
        }
      }
    }

    let longestPause = { ms: 0, from: 0 };
    const times = [...successes].sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) {
      const ms = (times[i] as number) - (times[i - 1] as number);
      if (ms > longestPause.ms) longestPause = { ms, from: times[i - 1] as number };
    }

    return {
      acknowledgedSends: acknowledged.size,
      completions: completionsInOrder.length,
      unknownCompletions: unknown.size,
      redeliveries,
      lost,
      orderViolations,
      duplicateCompletions,
      overlaps,
      longestPause,
      sendFailures,
      processorErrors,
    };
  }
}
