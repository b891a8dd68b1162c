import {
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Payload,
} from "@nats-io/transport-node";
import { type NatsRequestObserver, natsOperation } from "./nats-operations.js";

/** How often waiting requests are checked for their deadline. */
const SWEEP_INTERVAL_MS = 250;

interface Waiter {
  resolve(reply: Msg): void;
  reject(error: Error): void;
  subject: string;
  deadline: number;
  /** performance.now() when sent; 0 when nobody observes. */
  started: number;
}

/** A request that got no reply in time. */
export class RequestTimeoutError extends Error {
  override readonly name = "RequestTimeoutError";
  constructor(subject: string, timeoutMs: number) {
    super(`No reply to a request on ${subject} within ${timeoutMs} ms.`);
  }
}

/** A request to a subject nobody listens on (status 503), e.g. a deleted stream's. */
export class NoRespondersError extends Error {
  override readonly name = "NoRespondersError";
  constructor(subject: string) {
    super(`No responders for a request on ${subject}.`);
  }
}

/**
 * Request–reply over one shared reply subscription, for the requests made once per message
 * (JetStream publishes, acks with confirmation, session-index offers). nats.js's own
 * request creates a timer, several promises and, when it completes, an Error with a stack
 * trace; here a request is a publish with a reply subject and a map entry, and one sweep
 * every 250 ms fails those past their deadline. Replies are matched by the last token of
 * their subject.
 */
export class PipelinedRequests {
  private readonly prefix = createInbox();
  private readonly waiting = new Map<string, Waiter>();
  private nextId = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
    private readonly observe?: NatsRequestObserver,
  ) {
    const sub = nc.subscribe(`${this.prefix}.*`, {
      callback: (error, reply) => {
        if (error) this.failAll(error);
        else this.settle(reply);
      },
    });
    void sub.closed.then(() => this.failAll(new Error("The NATS connection is closed.")));
  }

  request(subject: string, data: Payload, headers?: MsgHdrs): Promise<Msg> {
    const id = (this.nextId++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      try {
        this.nc.publish(subject, data, {
          reply: `${this.prefix}.${id}`,
          ...(headers ? { headers } : {}),
        });
      } catch (error) {
        reject(error);
        return;
      }
      // Every request has the same timeout, so the map stays in deadline order.
      this.waiting.set(id, {
        resolve,
        reject,
        subject,
        deadline: Date.now() + this.timeoutMs,
        started: this.observe ? performance.now() : 0,
      });
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
    });
  }

  private settle(reply: Msg): void {
    const id = reply.subject.slice(this.prefix.length + 1);
    const waiter = this.waiting.get(id);
    if (!waiter) return; // timed out already
    this.waiting.delete(id);
    const failed = reply.headers?.code === 503;
    this.observed(waiter, !failed);
    if (failed) waiter.reject(new NoRespondersError(waiter.subject));
    else waiter.resolve(reply);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, waiter] of this.waiting) {
      if (waiter.deadline > now) break;
      this.waiting.delete(id);
      this.observed(waiter, false);
      waiter.reject(new RequestTimeoutError(waiter.subject, this.timeoutMs));
    }
    if (this.waiting.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private observed(waiter: Waiter, ok: boolean): void {
    this.observe?.(natsOperation(waiter.subject), (performance.now() - waiter.started) / 1000, ok);
  }

  private failAll(error: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}
