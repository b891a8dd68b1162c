import { create } from "@bufbuild/protobuf";
import type { Message } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import {
  type SendResult,
  SendResultSchema,
} from "../../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { compileRules, type MessageFilter } from "../../rules/message-filter.js";
import type { EntityRecord } from "../../store/entity-record.js";
import type { Store } from "../../store/store.js";
import { sessionToken, topicSubject } from "../../store/subjects.js";
import { type ResolvedEntity, resolvedFromRecord } from "../entities/entity-resolver.js";
import { internalPublishId } from "../messages/internal-publish-id.js";
import { encodeStored } from "../messages/message-codec.js";
import { deadLetter } from "../messages/settlement-actions.js";
import { storedForm } from "../messages/stored-form.js";
import { toSendError } from "./send-error.js";

/** The reason Service Bus gives a session-less message matching a session subscription. */
export const SESSION_ID_NULL_REASON = "Session id is null.";

/** Compiled rules per record object; a changed record is a new object, so this stays true. */
const filters = new WeakMap<EntityRecord, MessageFilter>();

function filterOf(subscription: EntityRecord): MessageFilter {
  let filter = filters.get(subscription);
  if (!filter) {
    filter = compileRules(subscription.rules ?? []);
    filters.set(subscription, filter);
  }
  return filter;
}

/** What one topic message does: its subject, and work for session subscriptions. */
interface Routing {
  subject: string;
  /** Session subscriptions the message matched without a session id. */
  sessionIdNull: EntityRecord[];
  /** Session subscriptions whose accept-next should hear of the message's session. */
  offers: EntityRecord[];
}

/**
 * Sends a batch to a topic. The broker evaluates each subscription's rules (in memory) and
 * stores every message ONCE in the topic stream, under a subject whose slot tokens say
 * which subscriptions take it; JetStream copies it into those subscriptions' streams. Per
 * message: one publish (after a marker, with duplicate detection: see markMessageIds), plus
 * an accept-next offer per session subscription that takes it.
 */
export async function sendToTopic(
  store: Store,
  topic: ResolvedEntity,
  messages: Message[],
  now: number,
  publishIds?: readonly string[],
): Promise<SendResult[]> {
  const subscriptions = store.entities
    .subscriptionsOf(topic.address.parentKey)
    .filter((s) => s.link?.topicStreamId === topic.record.streamId);
  const topicStreamId = topic.record.streamId;
  const routed = messages.map((message) => {
    const { messageId, stored } = storedForm(topic, message, now);
    return { message, messageId, stored, routing: route(topicStreamId, subscriptions, message) };
  });
  let ids: PublishIdOrKept[];
  try {
    ids = publishIds
      ? publishIds.map((publishId) => ({ publishId }))
      : topic.settings.requiresDuplicateDetection
        ? await markMessageIds(store, topicStreamId, routed)
        : routed.map(() => ({ publishId: undefined }));
  } catch (error) {
    throw toSendError(topic, error);
  }
  // Published in the batch's order: of two messages with one id, the first is kept.
  const outcomes = await Promise.allSettled(
    routed.map(async ({ messageId, stored, routing }, i) => {
      const id = ids[i] as PublishIdOrKept;
      const { sequence, duplicate } =
        "kept" in id
          ? { sequence: id.kept, duplicate: true }
          : await store.messages.publishToTopic(
              topicStreamId,
              routing.subject,
              encodeStored(stored),
              id.publishId,
            );
      return create(SendResultSchema, { sequenceNumber: BigInt(sequence), messageId, duplicate });
    }),
  );
  const failed = outcomes.find((o) => o.status === "rejected");
  if (failed) throw toSendError(topic, (failed as PromiseRejectedResult).reason);
  const results = outcomes.map((o) => (o as PromiseFulfilledResult<SendResult>).value);
  try {
    await Promise.all(
      routed.flatMap(({ stored, routing }, i) => {
        if (results[i]?.duplicate) return [];
        const sessionId = stored.message?.sessionId;
        return [
          ...routing.sessionIdNull.map((subscription) =>
            deadLetter(store, resolvedFromRecord(subscription), stored, {
              reason: SESSION_ID_NULL_REASON,
              cause: "session_id_null",
              description: `"${subscription.name}" requires sessions and the message matched its rules without a session id.`,
            }),
          ),
          ...routing.offers.map((subscription) =>
            store.sessionIndex.offer(subscription.streamId, sessionToken(sessionId)),
          ),
        ];
      }),
    );
  } catch (error) {
    throw toSendError(topic, error);
  }
  return results;
}

/** How a message is published: under this Nats-Msg-Id, or not at all (`kept` is stored). */
type PublishIdOrKept = { publishId: string | undefined } | { kept: number };

/**
 * Duplicate detection of a topic: the message_id goes on a marker (see markTopicMessageId),
 * never on the message itself, which is published under an id of the broker's made from the
 * marker's sequence number. The copies in the subscriptions' streams carry that id, unique
 * to the message, so no subscription stream's own duplicate window (JetStream checks the
 * header again on every sourced copy, and silently skips a copy it finds a duplicate) can
 * ever take a copy for a repeat. A repeated message_id finds the first marker, so its
 * message is published under the same id as the first and the topic stream drops it; if
 * the first send failed between marker and message, the repeat stores it. Markers stored
 * by an older broker are the messages themselves: a repeat of those is just a duplicate.
 * Throws if a marker could not be stored (nothing else was).
 */
async function markMessageIds(
  store: Store,
  topicStreamId: string,
  routed: readonly { messageId: string }[],
): Promise<PublishIdOrKept[]> {
  const marks = await Promise.all(
    routed.map(({ messageId }) => store.messages.markTopicMessageId(topicStreamId, messageId)),
  );
  const markedNow = new Set(marks.filter((m) => !m.duplicate).map((m) => m.sequence));
  return Promise.all(
    marks.map(async ({ sequence, duplicate }) => {
      const isMarker =
        !duplicate ||
        markedNow.has(sequence) ||
        (await store.messages.isTopicMarker(topicStreamId, sequence));
      return isMarker
        ? { publishId: internalPublishId("topic", topicStreamId, sequence) }
        : { kept: sequence };
    }),
  );
}

function route(topicStreamId: string, subscriptions: EntityRecord[], message: Message): Routing {
  const width = subscriptions.reduce((w, s) => Math.max(w, (s.link?.slot ?? -1) + 1), 0);
  const slots = new Array<boolean>(width).fill(false);
  const sessionIdNull: EntityRecord[] = [];
  const offers: EntityRecord[] = [];
  for (const subscription of subscriptions) {
    if (!subscription.link || !filterOf(subscription)(message)) continue;
    if (!subscription.settings.requiresSession) {
      slots[subscription.link.slot] = true;
    } else if (message.sessionId === undefined) {
      sessionIdNull.push(subscription);
    } else {
      slots[subscription.link.slot] = true;
      offers.push(subscription);
    }
  }
  return { subject: topicSubject(topicStreamId, message.sessionId, slots), sessionIdNull, offers };
}
