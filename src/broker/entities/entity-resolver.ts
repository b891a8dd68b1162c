import {
  deadLetterStreamId,
  type EntityRecord,
  type EntitySettings,
} from "../../store/entity-record.js";
import type { EntityRegistry } from "../../store/entity-registry.js";
import { type MessageLayout, queueLayout, subscriptionLayout } from "../../store/subjects.js";
import { EntityNotFoundError, TopicNotReceivableError } from "../errors.js";
import { type EntityAddress, parseEntityPath } from "./entity-path.js";

/** An entity a request names, resolved to where its messages live. */
export interface ResolvedEntity {
  address: EntityAddress;
  /** The queue the path belongs to (the parent, for a dead-letter queue). */
  record: EntityRecord;
  /** Stream of the addressed entity itself (the dead-letter stream for `…/$deadletterqueue`). */
  streamId: string;
  /** Settings that apply to the addressed entity. */
  settings: EntitySettings;
  /** Identity of the addressed entity, for checking that lock tokens belong to it. */
  identity: string;
  /** The subjects its active messages are stored under. */
  layout: MessageLayout;
}

/** A dead-letter queue never requires sessions and never dead-letters further. */
function deadLetterSettings(parent: EntitySettings): EntitySettings {
  return { ...parent, requiresSession: false, maxDeliveryCount: Number.POSITIVE_INFINITY };
}

/**
 * Resolves a path to a queue, a subscription or a dead-letter queue: what holds messages.
 * A topic only takes sends; see resolveSendTarget.
 */
export async function resolveEntity(
  registry: EntityRegistry,
  path: string,
  field = "entity_path",
): Promise<ResolvedEntity> {
  const entity = await resolveSendTarget(registry, path, field);
  if (entity.record.kind === "topic") throw new TopicNotReceivableError(entity.address.path);
  return entity;
}

/** Like resolveEntity, but a topic (sending only) is fine too. */
export async function resolveSendTarget(
  registry: EntityRegistry,
  path: string,
  field = "entity_path",
): Promise<ResolvedEntity> {
  const address = parseEntityPath(path, field);
  const found = await registry.get(address.parentKey);
  if (!found || (address.deadLetter && found.record.kind === "topic")) {
    throw new EntityNotFoundError(address.parentPath);
  }
  return resolvedFromRecord(found.record, address);
}

/** An entity from its registry record (and the address it was named by). */
export function resolvedFromRecord(
  record: EntityRecord,
  address: EntityAddress = parseEntityPath(record.name),
): ResolvedEntity {
  const streamId = address.deadLetter ? deadLetterStreamId(record.streamId) : record.streamId;
  return {
    address,
    record,
    streamId,
    settings: address.deadLetter ? deadLetterSettings(record.settings) : record.settings,
    identity: streamId,
    layout: layoutOf(record, address.deadLetter),
  };
}

/** Where the active messages of an entity (or of its dead-letter queue) are. */
export function layoutOf(record: EntityRecord, deadLetter: boolean): MessageLayout {
  if (deadLetter) return queueLayout(deadLetterStreamId(record.streamId));
  if (record.kind === "subscription" && record.link) {
    return subscriptionLayout(record.streamId, record.link.topicStreamId);
  }
  return queueLayout(record.streamId);
}
