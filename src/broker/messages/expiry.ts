import { durationMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { Message, ReceivedMessage } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import type { Store } from "../../store/store.js";
import { metricsOf } from "../broker-metrics.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { updateWithRetry } from "../entities/registry-update.js";
import type { SessionHandle } from "../locks/lock-handles.js";
import { decodeStored } from "./message-codec.js";
import { deadLetter } from "./settlement-actions.js";

/**
 * Message expiry (semantics §4 "Expiry"). nats-server 2.9 has no per-message TTL, so the
 * broker enforces it where messages leave the store: an expired message is never handed
 * out. Plain entities check each delivery; session entities apply the session rule (any
 * expired message expires every message of the session) when the session gets a listener
 * and whenever a held session's consumer delivers an expired message. Messages in flight
 * under a lock are never touched, and deferred messages (stored apart) never expire.
 */

/** The dead-letter reason of an expired message, as Service Bus names it. */
export const TTL_EXPIRED_REASON = "TTLExpiredException";

/** Messages expired together are moved in chunks of this many (copies, then deletes). */
const EXPIRE_CHUNK = 256;

/**
 * When the message expires (ms since the epoch), or undefined if never: the earlier of the
 * `expires_at` stored at send time and `enqueued_time` + the entity's current default TTL,
 * so a default lowered later (or a subscription's own default) caps older messages too.
 */
export function expiryInstant(
  entity: ResolvedEntity,
  message: ReceivedMessage,
): number | undefined {
  // A dead-letter queue keeps copies until someone removes them, as in Service Bus.
  if (entity.address.deadLetter) return undefined;
  let at = message.expiresAt ? timestampMs(message.expiresAt) : undefined;
  const fallback = entity.settings.defaultMessageTtlMs;
  if (fallback > 0 && message.enqueuedTime) {
    const capped = timestampMs(message.enqueuedTime) + fallback;
    at = at === undefined ? capped : Math.min(at, capped);
  }
  return at;
}

/**
 * Whether any message of the entity may carry an expiry: it has a default TTL, or a message
 * with a TTL was sent to it (or to its topic) once. Saves the accept-time scan (a direct get
 * per message of the session) on entities that never use TTLs.
 */
async function mayHoldExpiringMessages(store: Store, entity: ResolvedEntity): Promise<boolean> {
  if (entity.settings.defaultMessageTtlMs > 0) return true;
  const own = await store.entities.get(entity.address.parentKey);
  if (own?.record.expiringMessagesSince !== undefined) return true;
  const topicKey = entity.record.link?.topicKey;
  if (topicKey === undefined) return false;
  const topic = await store.entities.get(topicKey);
  return topic !== undefined && topic.record.settings.defaultMessageTtlMs > 0
    ? true
    : topic?.record.expiringMessagesSince !== undefined;
}

/**
 * Notes in the entity's record, once, that messages with an expiry were sent to it; done
 * before they are stored, so a listener never skips the expiry scan of a session holding
 * one (other broker processes see the note through their registry watch).
 */
export async function noteExpiringMessages(
  store: Store,
  entity: ResolvedEntity,
  messages: Message[],
): Promise<void> {
  if (entity.record.expiringMessagesSince !== undefined) return;
  const known = await store.entities.get(entity.address.parentKey);
  if (known?.record.expiringMessagesSince !== undefined) return;
  if (!messages.some((m) => m.timeToLive !== undefined && durationMs(m.timeToLive) > 0)) return;
  // Concurrent sends of this process share one write.
  let pending = notesInFlight.get(store);
  if (!pending) {
    pending = new Map();
    notesInFlight.set(store, pending);
  }
  const key = entity.address.parentKey;
  let note = pending.get(key);
  if (!note) {
    const since = Date.now();
    note = updateWithRetry(store, key, (record) =>
      record.expiringMessagesSince === undefined
        ? { ...record, expiringMessagesSince: since }
        : record,
    ).finally(() => pending.delete(key));
    pending.set(key, note);
  }
  await note;
}

const notesInFlight = new WeakMap<Store, Map<string, Promise<unknown>>>();

export function hasExpired(entity: ResolvedEntity, message: ReceivedMessage, now: number): boolean {
  const at = expiryInstant(entity, message);
  return at !== undefined && at <= now;
}

/** A message to expire and how its original is removed (ack or delete by sequence). */
interface Expiring {
  message: ReceivedMessage;
  remove(): Promise<void>;
}

/**
 * Expires messages: with dead_lettering_on_message_expiration their dead-letter copies are
 * stored first (all publishes in flight at once), then the originals are removed (in
 * parallel). A crash in between leaves a message in both places, never in neither.
 */
async function expireAll(
  store: Store,
  entity: ResolvedEntity,
  expiring: Expiring[],
  describe: (message: ReceivedMessage) => string,
): Promise<void> {
  if (expiring.length === 0) return;
  if (entity.settings.deadLetteringOnMessageExpiration) {
    await Promise.all(
      expiring.map(({ message }) =>
        deadLetter(store, entity, message, {
          reason: TTL_EXPIRED_REASON,
          description: describe(message),
          cause: "ttl_expired",
        }),
      ),
    );
  }
  await Promise.all(expiring.map((each) => each.remove()));
  metricsOf(store).expired(entity, expiring.length);
}

function ownExpiry(entity: ResolvedEntity, message: ReceivedMessage): string {
  const at = expiryInstant(entity, message) ?? 0;
  return `The message's time to live ran out at ${new Date(at).toISOString()}.`;
}

function expiredWithSession(
  entity: ResolvedEntity,
  trigger: ReceivedMessage,
): (message: ReceivedMessage) => string {
  const sessionId = trigger.message?.sessionId ?? "";
  const at = new Date(expiryInstant(entity, trigger) ?? 0).toISOString();
  return (message) =>
    message.sequenceNumber === trigger.sequenceNumber
      ? ownExpiry(entity, message)
      : `Message ${trigger.sequenceNumber} of session "${sessionId}" expired at ${at}; all messages of a session expire together.`;
}

// ---------------------------------------------------------------------------------------
// Plain entities.

/**
 * Expires a message about to be delivered from a session-less entity, if it is due:
 * dead-lettered (when enabled) or dropped, then removed through `remove`. Returns whether
 * it expired; the caller then moves on to the next message.
 */
export async function expireIfDue(
  store: Store,
  entity: ResolvedEntity,
  message: ReceivedMessage,
  remove: () => Promise<void>,
): Promise<boolean> {
  if (!hasExpired(entity, message, Date.now())) return false;
  await expireAll(store, entity, [{ message, remove }], (m) => ownExpiry(entity, m));
  return true;
}

// ---------------------------------------------------------------------------------------
// Sessions: when a session gets a listener.

/**
 * Applies the session rule as a session is accepted (named, or considered by accept-next),
 * right after its consumer was (re)created, so none of its messages is in flight. Reads the
 * session's active messages (one direct get each) until one has expired; if one has, every
 * message enqueued up to now expires with it. Returns the sequence numbers that expired.
 */
export async function expireSessionOnAccept(
  store: Store,
  entity: ResolvedEntity,
  sessionId: string,
): Promise<number[]> {
  if (entity.address.deadLetter || !(await mayHoldExpiringMessages(store, entity))) return [];
  const noticedAt = Date.now();
  let trigger: ReceivedMessage | undefined;
  for (let from = 1; !trigger; ) {
    const stored = await store.messages.nextActive(entity.layout, from, { id: sessionId });
    if (!stored) return [];
    const message = decodeStored(stored.data);
    message.sequenceNumber = BigInt(stored.sequence);
    if (hasExpired(entity, message, noticedAt)) trigger = message;
    from = stored.sequence + 1;
  }
  // Second pass from the start: the first one only kept what it needed to decide. A
  // message stored after the expiry was noticed is newer than the rule's decision: kept.
  const describe = expiredWithSession(entity, trigger);
  const expired: number[] = [];
  let chunk: Expiring[] = [];
  for (let from = 1; ; ) {
    const stored = await store.messages.nextActive(entity.layout, from, { id: sessionId });
    if (stored) {
      from = stored.sequence + 1;
      const message = decodeStored(stored.data);
      message.sequenceNumber = BigInt(stored.sequence);
      if (enqueuedAt(message) > noticedAt) continue;
      const sequence = stored.sequence;
      expired.push(sequence);
      chunk.push({
        message,
        remove: () => store.messages.deleteMessage(entity.streamId, sequence),
      });
    }
    if (chunk.length >= EXPIRE_CHUNK || (!stored && chunk.length > 0)) {
      await expireAll(store, entity, chunk, describe);
      chunk = [];
    }
    if (!stored) return expired;
  }
}

// ---------------------------------------------------------------------------------------
// Sessions: while held.

/** The session rule's decision while a session is held through one lock. */
interface HeldExpiry {
  /** Messages enqueued up to this instant expire as the consumer delivers them. */
  enqueuedUpTo: number;
  /** Sequence numbers that were in flight when the rule fired: they only expire by their own TTL. */
  exempt: Set<number>;
  describe: (message: ReceivedMessage) => string;
}

/** Kept per lock handle: it ends with the handle, and the next accept decides afresh. */
const heldExpiries = new WeakMap<SessionHandle, HeldExpiry>();

/**
 * Picks the messages of a group, just delivered by a held session's consumer and not yet
 * handed out, that expire. An expired one fires the session rule for the rest of the
 * session: every message enqueued up to that moment and not in flight under the lock then
 * expires, now (the rest of the group) or as the consumer delivers it later, so the order
 * of what the holder receives is kept. Messages already in flight are left to their holder;
 * released later, they expire only when their own TTL has passed.
 */
export function selectExpiredInSession(
  entity: ResolvedEntity,
  handle: SessionHandle,
  group: ReceivedMessage[],
): Set<ReceivedMessage> {
  const now = Date.now();
  const selected = new Set<ReceivedMessage>();
  const trigger = group.find((message) => hasExpired(entity, message, now));
  if (trigger) {
    // Fired again later (by a message stored after the last decision): decide afresh.
    heldExpiries.set(handle, {
      enqueuedUpTo: now,
      exempt: new Set([...handle.inflight].map((lock) => Number(lock.message.sequenceNumber))),
      describe: expiredWithSession(entity, trigger),
    });
  }
  const rule = heldExpiries.get(handle);
  for (const message of group) {
    if (hasExpired(entity, message, now)) selected.add(message);
    else if (
      rule &&
      enqueuedAt(message) <= rule.enqueuedUpTo &&
      !rule.exempt.has(Number(message.sequenceNumber))
    ) {
      selected.add(message);
    }
  }
  return selected;
}

/** Expires messages selectExpiredInSession picked; `remove` acks each one's delivery. */
export async function expireInSession(
  store: Store,
  entity: ResolvedEntity,
  handle: SessionHandle,
  expiring: Expiring[],
): Promise<void> {
  const describe = heldExpiries.get(handle)?.describe ?? ((m) => ownExpiry(entity, m));
  await expireAll(store, entity, expiring, describe);
}

function enqueuedAt(message: ReceivedMessage): number {
  return message.enqueuedTime ? timestampMs(message.enqueuedTime) : 0;
}
