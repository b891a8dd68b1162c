/**
 * Processes the sessions of a session-enabled entity with handlers, as Service Bus's
 * ServiceBusSessionProcessor does: up to `maxConcurrentSessions` sessions at once, each
 * session's messages in order, the session lock renewed while it is held, a session let go
 * when it stays quiet for `sessionIdleTimeoutMs`, and then the next one taken.
 *
 * Each of the `maxConcurrentSessions` slots loops: accept the next available session
 * (waiting for one as long as the broker allows, then asking again at once; there is no
 * delay between attempts unless one failed), run `sessionInitializing`, hand its messages
 * to `processMessage` until it is idle, released, stopped or its lock is lost, run
 * `sessionClosing`, and close the session.
 */

import { setMaxListeners } from "node:events";
import type { Span } from "@opentelemetry/api";
import { PROCESSOR_DEFAULTS, SESSION_RECEIVER_DEFAULTS, withDefaults } from "./defaults.js";
import { SessionCannotBeLockedError, SessionLockLostError } from "./errors.js";
import { startLockRenewal } from "./lock-renewal.js";
import type { ReceivedMessage } from "./message.js";
import { pause, retryDelayMs } from "./retry.js";
import type { CallOptions } from "./rpc.js";
import type { SessionBusClient } from "./session-bus-client.js";
import type { SessionReceiver } from "./session-receiver.js";
import {
  endSpan,
  failSpan,
  producerLink,
  runInSpan,
  SpanKind,
  startSpan,
  tracingOn,
} from "./tracing.js";

export interface SessionProcessorOptions {
  /** Sessions processed at once. @default 8 */
  maxConcurrentSessions?: number | undefined;
  /**
   * Messages of one session processed at once. Above 1, a session's messages are no longer
   * handled strictly one after the other. @default 1
   */
  maxConcurrentCallsPerSession?: number | undefined;
  /**
   * How long a session's lock is renewed automatically, counted from its acceptance; it is
   * renewed before it expires for as long as the session is held, up to this. 0 disables.
   * @default 300_000 (5 minutes)
   */
  maxAutoLockRenewalDurationMs?: number | undefined;
  /**
   * A session is released when no message arrives for this long while the processor waits
   * for one; the slot then takes another session. Keep it short when many sessions take
   * turns. @default 60_000 (the broker's accept-next wait)
   */
  sessionIdleTimeoutMs?: number | undefined;
  /** Complete each message whose handler returned without settling it. @default true */
  autoCompleteMessages?: boolean | undefined;
  /**
   * Process only these sessions, accepting them by name in turn (a session held by another
   * receiver is skipped and tried again later). @default every session (accept-next)
   */
  sessionIds?: readonly string[] | undefined;
  /**
   * Messages read ahead per session (at least `maxConcurrentCallsPerSession`); what is not
   * processed goes back to the session, delivery count unchanged, when it is released.
   * @default 10
   */
  prefetch?: number | undefined;
}

/** The session a handler runs in. */
export interface ProcessorSession {
  readonly entityPath: string;
  readonly sessionId: string;
  /** When the session lock runs out unless renewed. */
  readonly lockedUntil: Date;
  getState(options?: CallOptions): Promise<Uint8Array | undefined>;
  /** Replaces the state; undefined clears it. */
  setState(state: Uint8Array | string | undefined, options?: CallOptions): Promise<void>;
  renewLock(options?: CallOptions): Promise<Date>;
  /** Takes no further message from this session; it is closed once running handlers end. */
  release(): void;
}

/** What processMessage gets: the message, its session, and how to settle it. */
export interface ProcessMessageContext {
  readonly message: ReceivedMessage;
  readonly entityPath: string;
  readonly sessionId: string;
  readonly session: ProcessorSession;
  /** Aborted when the session lock is lost: the message can no longer be settled. */
  readonly signal: AbortSignal;
  complete(options?: CallOptions): Promise<void>;
  abandon(options?: CallOptions): Promise<void>;
  deadLetter(reason?: string, description?: string, options?: CallOptions): Promise<void>;
  defer(options?: CallOptions): Promise<void>;
}

/** Where an error reported to processError came from. */
export type ProcessErrorSource =
  | "acceptSession"
  | "sessionInitializing"
  | "receive"
  | "processMessage"
  | "complete"
  | "abandon"
  | "renewLock"
  | "sessionClosing"
  | "closeSession";

export interface ProcessErrorInfo {
  source: ProcessErrorSource;
  entityPath: string;
  /** The session concerned, when there is one. */
  sessionId: string | undefined;
  /** The message concerned, when there is one. */
  message: ReceivedMessage | undefined;
}

export interface SessionProcessorHandlers {
  /**
   * Handles one message. Returning without settling completes it (autoCompleteMessages);
   * throwing abandons it (it comes again, delivery count + 1) and reports the error.
   */
  processMessage(context: ProcessMessageContext): void | Promise<void>;
  /**
   * Everything that goes wrong: handler errors, lost locks, failed accepts, renewals and
   * settlements. The processor carries on (with another session where one was lost).
   */
  processError(error: unknown, info: ProcessErrorInfo): void | Promise<void>;
  /** A session was accepted, before its first message is handled. Throwing releases it. */
  sessionInitializing?(session: ProcessorSession): void | Promise<void>;
  /** A session is about to be released (not called when its lock was lost). */
  sessionClosing?(session: ProcessorSession): void | Promise<void>;
}

export interface SessionProcessor {
  readonly entityPath: string;
  readonly isRunning: boolean;
  /** Starts processing; resolves at once (no-op when running). */
  start(): Promise<void>;
  /**
   * Stops taking sessions and messages, lets running handlers finish (and settle), runs
   * sessionClosing and closes every held session; resolves when all that is done.
   */
  stop(): Promise<void>;
  /** stop(), after which the processor cannot be started again. */
  close(): Promise<void>;
}

export function createSessionProcessor(
  client: SessionBusClient,
  entityPath: string,
  handlers: SessionProcessorHandlers,
  options?: SessionProcessorOptions,
): SessionProcessor {
  const settings = withDefaults(PROCESSOR_DEFAULTS, options);
  settings.prefetch = Math.max(settings.prefetch, settings.maxConcurrentCallsPerSession);
  const sessionIds = options?.sessionIds === undefined ? undefined : [...options.sessionIds];
  return new Processor(client, entityPath, handlers, settings, sessionIds);
}

type Settings = typeof PROCESSOR_DEFAULTS;

class Processor implements SessionProcessor {
  private stopping: AbortController | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  /** Named mode: the sessions being processed here, and where the next search starts. */
  private readonly inUse = new Set<string>();
  private cursor = 0;

  constructor(
    private readonly client: SessionBusClient,
    readonly entityPath: string,
    private readonly handlers: SessionProcessorHandlers,
    private readonly settings: Settings,
    private readonly sessionIds: string[] | undefined,
  ) {}

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error(`The session processor of "${this.entityPath}" is closed`);
    if (this.running) return;
    const stopping = new AbortController();
    setMaxListeners(0, stopping.signal); // every slot and session waits on it
    this.stopping = stopping;
    const slots =
      this.sessionIds === undefined
        ? this.settings.maxConcurrentSessions
        : Math.min(this.settings.maxConcurrentSessions, this.sessionIds.length);
    this.running = Promise.all(
      Array.from({ length: slots }, () => this.slot(stopping.signal)),
    ).then(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopping?.abort();
    await this.running;
    this.running = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.stop();
  }

  /** One session at a time, for as long as the processor runs. */
  private async slot(stop: AbortSignal): Promise<void> {
    let failures = 0;
    while (!stop.aborted) {
      let accepted: SessionReceiver | "busy" | undefined;
      try {
        accepted = await this.accept(stop);
      } catch (error) {
        if (stop.aborted) break;
        await this.report(error, { source: "acceptSession" });
        failures++;
        await pause(retryDelayMs(failures), stop);
        continue;
      }
      if (accepted === "busy") {
        // Every named session is held elsewhere; look again after a while.
        failures++;
        await pause(retryDelayMs(failures), stop);
        continue;
      }
      failures = 0;
      // Accept-next found no session within its wait: ask again at once.
      if (!accepted) continue;
      const receiver = accepted;
      try {
        await this.process(receiver, stop);
      } catch (error) {
        await this.report(error, { source: "receive", sessionId: receiver.sessionId });
      } finally {
        this.inUse.delete(receiver.sessionId);
      }
    }
  }

  private async accept(stop: AbortSignal): Promise<SessionReceiver | "busy" | undefined> {
    const prefetch = this.settings.prefetch;
    if (this.sessionIds === undefined) {
      return this.client.acceptNextSession(this.entityPath, {
        maxWaitMs: SESSION_RECEIVER_DEFAULTS.maxWaitMs,
        prefetch,
        signal: stop,
      });
    }
    const names = this.sessionIds;
    for (let tried = 0; tried < names.length; tried++) {
      const index = (this.cursor + tried) % names.length;
      const sessionId = names[index] as string;
      if (this.inUse.has(sessionId)) continue;
      this.inUse.add(sessionId);
      this.cursor = (index + 1) % names.length;
      try {
        return await this.client.acceptSession(this.entityPath, sessionId, {
          prefetch,
          signal: stop,
        });
      } catch (error) {
        this.inUse.delete(sessionId);
        if (!(error instanceof SessionCannotBeLockedError)) throw error;
      }
    }
    return "busy";
  }

  /** Handles one accepted session until it is idle, released, lost or stopped; closes it. */
  private async process(receiver: SessionReceiver, stop: AbortSignal): Promise<void> {
    const { sessionId } = receiver;
    const ended = new AbortController();
    const lost = new AbortController();
    setMaxListeners(0, ended.signal, lost.signal);
    const end = () => ended.abort();
    stop.addEventListener("abort", end);
    if (stop.aborted) end();
    const session: ProcessorSession = {
      entityPath: this.entityPath,
      sessionId,
      get lockedUntil() {
        return receiver.lockedUntil;
      },
      getState: (options) => receiver.getState(options),
      setState: (state, options) => receiver.setState(state, options),
      renewLock: (options) => receiver.renewLock(options),
      release: end,
    };
    /** Reports an error of this session; a lost lock once, and it ends the session. */
    const report = async (
      error: unknown,
      source: ProcessErrorSource,
      message?: ReceivedMessage,
    ) => {
      if (error instanceof SessionLockLostError) {
        if (lost.signal.aborted) return;
        lost.abort(error);
        ended.abort();
      }
      await this.report(error, { source, sessionId, message });
    };

    try {
      await this.handlers.sessionInitializing?.(session);
    } catch (error) {
      stop.removeEventListener("abort", end);
      await report(error, "sessionInitializing");
      await receiver.close().catch((e: unknown) => report(e, "closeSession"));
      return;
    }

    const { maxAutoLockRenewalDurationMs } = this.settings;
    const renewal =
      maxAutoLockRenewalDurationMs > 0
        ? startLockRenewal({
            renew: () => receiver.renewLock(),
            lockedUntil: receiver.lockedUntil,
            maxDurationMs: maxAutoLockRenewalDurationMs,
            onError: (error) => void report(error, "renewLock"),
            onLost: (error) => void report(error, "renewLock"),
          })
        : undefined;

    const worker = async () => {
      while (!ended.signal.aborted) {
        let message: ReceivedMessage | undefined;
        try {
          message = await receiver.receiveMessage({
            maxWaitMs: this.settings.sessionIdleTimeoutMs,
            signal: ended.signal,
          });
        } catch (error) {
          if (ended.signal.aborted) return;
          ended.abort();
          await report(error, "receive");
          return;
        }
        if (!message) {
          // Idle for sessionIdleTimeoutMs, or the session ended: let it go.
          ended.abort();
          return;
        }
        await this.handle(receiver, session, message, lost.signal, report);
      }
    };
    try {
      await Promise.all(Array.from({ length: this.settings.maxConcurrentCallsPerSession }, worker));
    } finally {
      renewal?.stop();
      stop.removeEventListener("abort", end);
    }
    if (!lost.signal.aborted) {
      try {
        await this.handlers.sessionClosing?.(session);
      } catch (error) {
        await report(error, "sessionClosing");
      }
    }
    try {
      await receiver.close();
    } catch (error) {
      await report(error, "closeSession");
    }
  }

  private async handle(
    receiver: SessionReceiver,
    session: ProcessorSession,
    message: ReceivedMessage,
    lost: AbortSignal,
    report: (
      error: unknown,
      source: ProcessErrorSource,
      message?: ReceivedMessage,
    ) => Promise<void>,
  ): Promise<void> {
    // Settled (or tried to) by the handler: the processor leaves the message alone.
    let settled = false;
    const settle = (action: () => Promise<void>) => {
      settled = true;
      return action();
    };
    const context: ProcessMessageContext = {
      message,
      entityPath: this.entityPath,
      sessionId: session.sessionId,
      session,
      signal: lost,
      complete: (options) => settle(() => receiver.complete(message, options)),
      abandon: (options) => settle(() => receiver.abandon(message, options)),
      deadLetter: (reason, description, options) =>
        settle(() => receiver.deadLetter(message, reason, description, options)),
      defer: (options) => settle(() => receiver.defer(message, options)),
    };
    // The message's span, linked to the span that sent it, when the application traces.
    let span: Span | undefined;
    if (tracingOn()) {
      const link = producerLink(message.applicationProperties);
      span = startSpan({
        operation: "process",
        destination: this.entityPath,
        kind: SpanKind.CONSUMER,
        ...(link ? { links: [link] } : {}),
        attributes: {
          "messaging.message.id": message.messageId,
          "sessionbus.session.id": session.sessionId,
        },
      });
    }
    try {
      await runInSpan(span, () =>
        this.runHandler(receiver, context, lost, report, () => settled, span),
      );
    } finally {
      endSpan(span);
    }
  }

  /** Runs the handler, then completes or abandons as the settings say (in the message's span). */
  private async runHandler(
    receiver: SessionReceiver,
    context: ProcessMessageContext,
    lost: AbortSignal,
    report: (
      error: unknown,
      source: ProcessErrorSource,
      message?: ReceivedMessage,
    ) => Promise<void>,
    isSettled: () => boolean,
    span: Span | undefined,
  ): Promise<void> {
    const { message } = context;
    try {
      await this.handlers.processMessage(context);
    } catch (error) {
      failSpan(span, error);
      await report(error, "processMessage", message);
      if (isSettled() || lost.aborted) return;
      try {
        await receiver.abandon(message);
      } catch (abandonError) {
        await report(abandonError, "abandon", message);
      }
      return;
    }
    if (isSettled() || lost.aborted || !this.settings.autoCompleteMessages) return;
    try {
      await receiver.complete(message);
    } catch (error) {
      await report(error, "complete", message);
    }
  }

  /** Hands an error to processError; what that throws has nowhere else to go. */
  private async report(
    error: unknown,
    info: Partial<ProcessErrorInfo> & { source: ProcessErrorSource },
  ): Promise<void> {
    try {
      await this.handlers.processError(error, {
        entityPath: this.entityPath,
        sessionId: undefined,
        message: undefined,
        ...info,
      });
    } catch {
      // ignored: processError is the last resort
    }
  }
}
