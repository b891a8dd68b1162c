import { setTimeout as delay } from "node:timers/promises";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ReceivedMessage } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import type { Delivery } from "../../store/message-streams.js";
import { isConsumerDeleted, PullInterruptedError } from "../../store/pull-errors.js";
import { readyGroups } from "../../store/ready-groups.js";
import type { SessionRecord } from "../../store/session-records.js";
import type { Store } from "../../store/store.js";
import { metricsOf } from "../broker-metrics.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { isStoreOutage } from "../errors.js";
import type { SessionHandle } from "../locks/lock-handles.js";
import type { MessageLocks } from "../locks/message-locks.js";
import { expireInSession, selectExpiredInSession } from "../messages/expiry.js";
import { decodeStored } from "../messages/message-codec.js";
import { deadLetter } from "../messages/settlement-actions.js";
import { longestPullMs } from "../receiving/longest-pull.js";
import { ReceiveCredit } from "../receiving/receive-credit.js";
import type { ReceiveEvent, ReceiveOptions } from "../receiving/receiver.js";
import { dropSettled, raiseCount, settledPerRecord } from "./delivery-counts.js";
import { updateSessionRecord } from "./session-record-update.js";
import type { Sessions } from "./sessions.js";

/**
 * Delivers one locked session's messages in sequence order. Before a message is handed
 * out, its delivery count is written to the session record (compare-and-set, which also
 * proves the lock is still ours), so a crash never resets a count. Recalled deliveries
 * (after an abandon) are announced before the messages that replace them.
 */
export async function* receiveSession(
  store: Store,
  locks: MessageLocks,
  sessions: Sessions,
  entity: ResolvedEntity,
  handle: SessionHandle,
  options: ReceiveOptions,
): AsyncGenerator<ReceiveEvent> {
  const credit = new ReceiveCredit(options.prefetch || 1);
  const signal = AbortSignal.any([options.signal, handle.ended.signal]);
  // Voided tokens waiting to be announced; undefined when no announcement is due (an
  // abandon announces even an empty list: it marks where deliveries are valid again).
  let recalled: string[] | undefined;
  handle.onRecall = (tokens) => {
    recalled = [...(recalled ?? []), ...tokens];
  };
  const takeRecalled = () => {
    const tokens = recalled ?? [];
    recalled = undefined;
    return tokens;
  };
  let delivered = 0;
  let idleSince = Date.now();
  const metrics = metricsOf(store);
  const longestPull = longestPullMs(store.replicas);
  try {
    while (!signal.aborted && (options.maxMessages === 0 || delivered < options.maxMessages)) {
      // Waiting for credit must not outlast the lock: a lost lock ends the stream with its error.
      if (credit.available <= 0) {
        const untilExpiry = Math.max(0, handle.lockedUntil - Date.now());
        await credit.whenAvailable(
          AbortSignal.any([signal, AbortSignal.timeout(untilExpiry + 50)]),
        );
        if (signal.aborted) break;
        // Time spent waiting for the client to settle is not idle time (max_wait).
        idleSince = Date.now();
        if (credit.available <= 0) {
          await sessions.handle(entity, handle); // throws SESSION_LOCK_LOST, or finds it renewed
          continue;
        }
      }
      const want =
        options.maxMessages === 0
          ? credit.available
          : Math.min(credit.available, options.maxMessages - delivered);
      const idleLeft =
        options.maxWaitMs === 0 ? longestPull : options.maxWaitMs - (Date.now() - idleSince);
      if (idleLeft <= 0) break;
      // Wake before the lock runs out, so a lost lock ends the stream with its error.
      const lockLeft = handle.lockedUntil - Date.now();
      const generation = handle.generation;
      const batch = await handle.reader.fetch(
        want,
        Math.min(idleLeft, longestPull, Math.max(1000, lockLeft)),
      );
      const stop = () => batch.stop();
      signal.addEventListener("abort", stop);
      handle.interrupt = stop;
      try {
        for await (const group of readyGroups(batch)) {
          if (signal.aborted || handle.generation !== generation) break;
          // One record write counts the whole group: a round trip per group, not per message.
          const admitted = await admit(store, sessions, entity, handle, group);
          let next = 0;
          for (; next < admitted.length; next++) {
            // An abandon recreated the consumer meanwhile: the rest of the group comes again.
            // The stream or the lock ended: nothing more is handed out.
            if (handle.generation !== generation || signal.aborted) break;
            const { delivery, message } = admitted[next] as Admitted;
            if (recalled) yield { kind: "recalled", lockTokens: takeRecalled() };
            if (!message) continue;
            if (options.receiveAndDelete) {
              await delivery.ack();
              handle.settled.push(delivery.streamSequence);
            } else {
              credit.take();
              const lock = locks.add({
                entity: entity.identity,
                entityPath: entity.address.path,
                lockedUntil: handle.lockedUntil,
                target: { kind: "active", delivery },
                message,
                onEnd: () => credit.give(),
                session: handle,
              });
              handle.inflight.add(lock);
              message.lockToken = lock.token;
              message.lockedUntil = timestampFromMs(handle.lockedUntil);
            }
            delivered++;
            idleSince = Date.now();
            metrics.delivered(entity, 1);
            yield { kind: "message", message };
          }
          const voided = admitted.slice(next).filter((a) => a.message !== undefined);
          if (voided.length > 0) {
            await sessions.uncount(
              entity,
              handle,
              voided.map((a) => a.delivery.streamSequence),
            );
            // Still the consumer's: handed back, so another stream under the lock gets them.
            if (handle.generation === generation) {
              for (const { delivery } of voided) await delivery.nak().catch(() => undefined);
            }
            break;
          }
        }
      } catch (error) {
        // The pull of a consumer an abandon replaced may end in an error: carry on. A new
        // holder deletes the consumer too: then the lock check reports the lost lock.
        if (handle.generation === generation) {
          // A deleted consumer too: the lock check in resetConsumer tells a new holder (lock
          // lost) or a deleted entity from a restarted nats-server (recreate and go on).
          if (!(error instanceof PullInterruptedError || isConsumerDeleted(error))) {
            await sessions.handle(entity, handle);
            throw error;
          }
          await resetConsumer(sessions, entity, handle, signal);
        }
      } finally {
        signal.removeEventListener("abort", stop);
        if (handle.interrupt === stop) handle.interrupt = undefined;
      }
      if (recalled) yield { kind: "recalled", lockTokens: takeRecalled() };
      // The lock may have been lost or taken over: a fresh check says which, as an error.
      if (handle.lockedUntil <= Date.now()) await sessions.handle(entity, handle);
    }
  } finally {
    if (handle.onRecall) handle.onRecall = undefined;
  }
}

/**
 * After an interrupted pull: messages of that pull may have been delivered unseen, and the
 * consumer may be gone (a restarted nats-server). Resets the session's consumer as an
 * abandon does (recalling what is in flight), so they come again in order. A nats-server
 * that is restarting does not answer for a while: tries again, with growing pauses, as
 * long as the lock lasts.
 */
async function resetConsumer(
  sessions: Sessions,
  entity: ResolvedEntity,
  handle: SessionHandle,
  signal: AbortSignal,
): Promise<void> {
  for (let pauseMs = 100; ; pauseMs = Math.min(pauseMs * 2, 2_000)) {
    try {
      await sessions.handle(entity, handle); // throws SESSION_LOCK_LOST if it was taken
      await sessions.abandon(entity, handle, new Set());
      return;
    } catch (error) {
      if (!isStoreOutage(error) || Date.now() + pauseMs >= handle.lockedUntil) throw error;
      await delay(pauseMs, undefined, { signal });
    }
  }
}

interface Admitted {
  delivery: Delivery;
  /** Undefined when the delivery went to the dead-letter queue instead. */
  message: ReceivedMessage | undefined;
}

/**
 * Counts the deliveries in the session record (one compare-and-set, which also proves the
 * lock is still held) before they are handed out, expires those the session's expiry rule
 * picks, and dead-letters those whose delivery would exceed max_delivery_count.
 */
async function admit(
  store: Store,
  sessions: Sessions,
  entity: ResolvedEntity,
  handle: SessionHandle,
  group: Delivery[],
): Promise<Admitted[]> {
  const settled = handle.settled.length;
  const counts = new Map<number, number>();
  // A message this handle has in flight (delivered, its lock unsettled or being settled) is
  // not handed out twice: with replicas, a session consumer whose leader moved to a replica
  // that had lost its state (a restarted nats-server keeps no memory consumer) delivered
  // every message in flight again, and both copies were completed. Not counted, not acked:
  // the first copy's settlement ends both on the consumer (an ack names the stream
  // sequence; a removal through the stream's log ends every delivery of it).
  // A second copy within one pull goes the same way.
  const inFlight = new Set([...handle.inflight].map((lock) => Number(lock.message.sequenceNumber)));
  const twice = group.filter((delivery) => {
    if (inFlight.has(delivery.streamSequence)) return true;
    inFlight.add(delivery.streamSequence);
    return false;
  });
  // With replicas, a consumer may hand out a message settled already (see settledAgain).
  let again: Delivery[] = [];
  await writeUnderLock(store, sessions, entity, handle, (record) => {
    dropSettled(record, handle.settled.slice(0, settled));
    again =
      store.replicas > 1
        ? group.filter(
            (delivery) =>
              !twice.includes(delivery) && settledPerRecord(record, delivery.streamSequence),
          )
        : [];
    for (const delivery of group) {
      if (again.includes(delivery) || twice.includes(delivery)) continue;
      counts.set(delivery.streamSequence, raiseCount(record, delivery.streamSequence));
    }
  });
  handle.settled.splice(0, settled);
  const gone =
    again.length > 0 ? await settledAgain(store, sessions, entity, handle, again, counts) : [];
  const live = group.filter((delivery) => !gone.includes(delivery) && !twice.includes(delivery));
  const messages = live.map((delivery) => {
    const message = decodeStored(delivery.data);
    message.sequenceNumber = BigInt(delivery.streamSequence);
    message.deliveryCount = counts.get(delivery.streamSequence) ?? 1;
    return message;
  });
  const expired = selectExpiredInSession(entity, handle, messages);
  await expireInSession(
    store,
    entity,
    handle,
    live.flatMap((delivery, i) => {
      const message = messages[i] as ReceivedMessage;
      return expired.has(message) ? [{ message, remove: () => delivery.ack() }] : [];
    }),
  );
  const admitted: Admitted[] = [];
  for (const delivery of group) {
    const i = live.indexOf(delivery);
    if (i < 0) {
      admitted.push({ delivery, message: undefined }); // settled or in flight: not handed out
      continue;
    }
    const message = messages[i] as ReceivedMessage;
    if (expired.has(message)) {
      handle.settled.push(delivery.streamSequence);
      admitted.push({ delivery, message: undefined });
    } else if (message.deliveryCount > entity.settings.maxDeliveryCount) {
      await deadLetter(store, entity, message, {
        reason: "MaxDeliveryCountExceeded",
        cause: "max_delivery_count",
        description: `The message was delivered ${entity.settings.maxDeliveryCount} times without being completed.`,
      });
      await delivery.ack();
      handle.settled.push(delivery.streamSequence);
      admitted.push({ delivery, message: undefined });
    } else {
      admitted.push({ delivery, message });
    }
  }
  return admitted;
}

/**
 * Deliveries of messages the session record shows settled (settledPerRecord), with
 * replicas: a removal goes through the stream's log and is answered once the leader has
 * applied it, but a consumer whose leader is on a replica still behind (during a rolling
 * restart, or after a kill) delivered completed messages again, seconds after their
 * completions were answered. Each is looked up on the stream's leader: one it no longer
 * has is acked (which takes it off the consumer) and not handed out, and is returned. One
 * the leader still has is counted after all (adding to `counts`) and handed out: the
 * record is trusted only as far as the leader agrees, so nothing is ever dropped unsettled.
 */
async function settledAgain(
  store: Store,
  sessions: Sessions,
  entity: ResolvedEntity,
  handle: SessionHandle,
  again: Delivery[],
  counts: Map<number, number>,
): Promise<Delivery[]> {
  const onLeader = await Promise.all(
    again.map((delivery) => store.messages.getActive(entity.layout, delivery.streamSequence)),
  );
  const gone = again.filter((_, i) => onLeader[i] === undefined);
  const there = again.filter((_, i) => onLeader[i] !== undefined);
  await Promise.all(gone.map((delivery) => delivery.ack().catch(() => undefined)));
  if (there.length > 0) {
    await writeUnderLock(store, sessions, entity, handle, (record) => {
      for (const delivery of there) {
        counts.set(delivery.streamSequence, raiseCount(record, delivery.streamSequence));
      }
    });
  }
  return gone;
}

/**
 * One compare-and-set of the session record that also proves the lock is still the
 * handle's, starting from the copy the handle last wrote (see updateSessionRecord).
 */
async function writeUnderLock(
  store: Store,
  sessions: Sessions,
  entity: ResolvedEntity,
  handle: SessionHandle,
  change: (record: SessionRecord) => void,
): Promise<void> {
  handle.known = await updateSessionRecord(
    store,
    entity.streamId,
    handle.token,
    (record, fresh) => {
      sessions.checkHeld(handle, record, fresh);
      change(record);
      return record;
    },
    handle.known,
  );
}
