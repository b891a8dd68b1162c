import type { Store } from "../../store/store.js";
import { deadLetterPath, parseEntityPath } from "../entities/entity-path.js";
import {
  type ResolvedEntity,
  resolvedFromRecord,
  resolveEntity,
} from "../entities/entity-resolver.js";
import { InvalidArgumentError } from "../errors.js";

/** A queue or subscription and its dead-letter queue, as ResubmitDeadLetteredMessages and PurgeDeadLetteredMessages name them. */
export interface DeadLetterPair {
  /** The queue or subscription the messages go back to. */
  source: ResolvedEntity;
  deadLetter: ResolvedEntity;
}

/** Resolves `path` (a queue or subscription, not its "$deadletterqueue" path). */
export async function resolveDeadLetterPair(store: Store, path: string): Promise<DeadLetterPair> {
  const source = await resolveEntity(store.entities, path);
  if (source.address.deadLetter) {
    throw new InvalidArgumentError(
      "entity_path",
      `entity_path "${path}" names a dead-letter queue; name its queue or subscription ("${source.address.parentPath}").`,
      { entityPath: path },
    );
  }
  const deadLetter = resolvedFromRecord(
    source.record,
    parseEntityPath(deadLetterPath(source.address.parentPath)),
  );
  return { source, deadLetter };
}
