import {
  deadLetterStreamId,
  type EntityRecord,
  type EntitySettings,
} from "../store/entity-record.js";
import type { EntityRegistry } from "../store/entity-registry.js";
import { type EntityAddress, parseEntityPath } from "./entity-path.js";
import { EntityNotFoundError } from "./errors.js";

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
}

/** A dead-letter queue never requires sessions and never dead-letters further. */
function deadLetterSettings(parent: EntitySettings): EntitySettings {
  return { ...parent, requiresSession: false, maxDeliveryCount: Number.POSITIVE_INFINITY };
}

export async function resolveEntity(
  registry: EntityRegistry,
  path: string,
  field = "entity_path",
): Promise<ResolvedEntity> {
  const address = parseEntityPath(path, field);
  const found = await registry.get(address.parentKey);
  if (!found) throw new EntityNotFoundError(address.parentPath);
  const { record } = found;
  const streamId = address.deadLetter ? deadLetterStreamId(record.streamId) : record.streamId;
  return {
    address,
    record,
    streamId,
    settings: address.deadLetter ? deadLetterSettings(record.settings) : record.settings,
    identity: streamId,
  };
}
