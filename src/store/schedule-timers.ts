import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { ReplicaCount } from "./replicas.js";
import { ALL_TIMER_SUBJECTS, TIMER_CONSUMER, TIMER_STREAM, timerSubject } from "./subjects.js";

/** When the scheduled message stored as `sequence` in stream `streamId` becomes active. */
export interface ScheduleTimer {
  /** Path of the entity, to resolve it (and see that it still exists) at activation. */
  entityPath: string;
  streamId: string;
  sequence: number;
  /** Milliseconds since the epoch. */
  dueAt: number;
}

/** A timer handed to this broker process, with the ways to finish it. */
export interface TimerDelivery {
  timer: ScheduleTimer;
  /** Done (activated, cancelled or moot): the timer is removed; waits for the server. */
  done(): Promise<void>;
  /** Not yet: JetStream hands it out again (to any broker) after `delayMs`. */
  later(delayMs: number): void;
}

/** Running delivery of timers; stop() ends the iteration. */
export interface TimerFeed extends AsyncIterable<TimerDelivery> {
  stop(): void;
}

/**
 * How long a timer handed out stays with its broker before JetStream gives it to another.
 * Below the shortest duplicate-detection window (20 s), so that an activation repeated after
 * a broker died mid-way is still recognised as a duplicate by the entity's stream.
 */
const TIMER_ACK_WAIT_MS = 10_000;

/**
 * Durable timers of scheduled messages. nats-server 2.9 cannot schedule messages, but a nak
 * with a delay makes JetStream deliver a message again at a given time: a timer that is not
 * due yet is nakked with the time left, so it comes back when it is due. All broker
 * processes pull from one durable consumer, so each timer is with one broker at a time.
 */
export class ScheduleTimers {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    /** Copies of the timer stream (SESSIONBUS_REPLICAS); its consumer has as many. */
    private readonly replicas: ReplicaCount,
  ) {}

  /** Creates the timer stream and its consumer when missing. Idempotent. */
  async ensure(): Promise<void> {
    const config = {
      name: TIMER_STREAM,
      subjects: [ALL_TIMER_SUBJECTS],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      // Repeated adds of one timer (a retried schedule) keep one: see add().
      duplicate_window: nanos(120_000),
      num_replicas: this.replicas,
    };
    try {
      await this.jsm.streams.add(config);
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === 10058)) throw error;
      await this.jsm.streams.update(config.name, config);
    }
    const consumer = await this.jsm.consumers.add(TIMER_STREAM, {
      durable_name: TIMER_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(TIMER_ACK_WAIT_MS),
      max_deliver: -1,
      // A nakked timer stays pending until it is acked: every scheduled message is one.
      max_ack_pending: -1,
      max_waiting: 512,
    });
    if (consumer.config.max_ack_pending !== -1) {
      throw new Error(
        `${TIMER_STREAM}: JetStream kept max_ack_pending = ${consumer.config.max_ack_pending}, not unlimited.`,
      );
    }
  }

  /** Stores the timers (all at once). */
  async add(timers: readonly ScheduleTimer[]): Promise<void> {
    await Promise.all(
      timers.map((timer) =>
        this.js.publish(timerSubject(timer.streamId), JSON.stringify(timer), {
          msgID: `${timer.streamId}.${timer.sequence}`,
          expect: { streamName: TIMER_STREAM },
        }),
      ),
    );
  }

  /** Starts pulling timers; at most `max` are handed out to this process at once. */
  async feed(max: number): Promise<TimerFeed> {
    const consumer = await this.js.consumers.get(TIMER_STREAM, TIMER_CONSUMER);
    const messages: ConsumerMessages = await consumer.consume({ max_messages: max });
    return {
      stop: () => messages.stop(),
      async *[Symbol.asyncIterator]() {
        for await (const m of messages) {
          let timer: ScheduleTimer;
          try {
            timer = m.json<ScheduleTimer>();
          } catch {
            // Not ours to read: nothing can ever activate it.
            m.term();
            continue;
          }
          yield {
            timer,
            done: async () => {
              await m.ackAck();
            },
            later: (delayMs) => m.nak(Math.max(1, Math.round(delayMs))),
          };
        }
      },
    };
  }
}
