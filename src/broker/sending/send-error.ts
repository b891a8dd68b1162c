import type { ResolvedEntity } from "../entities/entity-resolver.js";
import { QuotaExceededError, StoreUnavailableError } from "../errors.js";

/** What a failed publish means for the sender: a full store or an unavailable one. */
export function toSendError(entity: ResolvedEntity, cause: unknown): Error {
  const text = cause instanceof Error ? cause.message : String(cause);
  if (/maximum (bytes|messages)|resources exceeded|storage/i.test(text)) {
    return new QuotaExceededError(entity.address.path, { cause });
  }
  return new StoreUnavailableError(`storing messages in "${entity.address.path}"`, { cause });
}
