import type { EntityRecord, EntitySettings } from "../../store/entity-record.js";
import { InvalidArgumentError } from "../errors.js";

const SECOND = 1000;
const KIB = 1024;
const MIB = 1024 * KIB;

/** Defaults of semantics §1, applied in this one place. */
export const DEFAULT_SETTINGS: EntitySettings = {
  requiresSession: false,
  lockDurationMs: 60 * SECOND,
  maxDeliveryCount: 10,
  defaultMessageTtlMs: 0,
  deadLetteringOnMessageExpiration: false,
  maxMessageSizeBytes: 256 * KIB,
  maxSessionStateSizeBytes: 256 * KIB,
  requiresDuplicateDetection: false,
  duplicateDetectionWindowMs: 10 * 60 * SECOND,
  maxSizeBytes: 1024 * MIB,
};

/**
 * The largest message the broker accepts: a stored message travels as one NATS message,
 * whose default limit (max_payload) is 1 MiB, and the stored form adds a little.
 */
export const MESSAGE_SIZE_CEILING = 1_000_000;

type Range = { min: number; max: number; unit: string; scale: number };

const RANGES: Partial<Record<keyof EntitySettings, Range & { field: string }>> = {
  lockDurationMs: {
    field: "lock_duration",
    min: 5 * SECOND,
    max: 300 * SECOND,
    unit: "s",
    scale: SECOND,
  },
  maxDeliveryCount: { field: "max_delivery_count", min: 1, max: 2 ** 31 - 1, unit: "", scale: 1 },
  defaultMessageTtlMs: {
    field: "default_message_ttl",
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    unit: "ms",
    scale: 1,
  },
  maxMessageSizeBytes: {
    field: "max_message_size_bytes",
    min: 1 * KIB,
    max: MESSAGE_SIZE_CEILING,
    unit: " bytes",
    scale: 1,
  },
  maxSessionStateSizeBytes: {
    field: "max_session_state_size_bytes",
    min: 1,
    max: 100 * MIB,
    unit: " bytes",
    scale: 1,
  },
  duplicateDetectionWindowMs: {
    field: "duplicate_detection_window",
    min: 20 * SECOND,
    max: 7 * 24 * 3600 * SECOND,
    unit: "s",
    scale: SECOND,
  },
  maxSizeBytes: {
    field: "max_size_bytes",
    min: 1 * MIB,
    max: Number.MAX_SAFE_INTEGER,
    unit: " bytes",
    scale: 1,
  },
};

/** requires_session is fixed at creation: refuses an update that would change it. */
export function refuseRequiresSessionChange(
  record: EntityRecord,
  changes: Partial<EntitySettings>,
): void {
  if (
    changes.requiresSession !== undefined &&
    changes.requiresSession !== record.settings.requiresSession
  ) {
    throw new InvalidArgumentError(
      "properties.requires_session",
      `requires_session of "${record.name}" is fixed at creation; create a new ${record.kind} instead.`,
      { entityPath: record.name },
    );
  }
}

/** Merges `changes` over `base` and checks every value against its allowed range. */
export function applySettings(
  base: EntitySettings,
  changes: Partial<EntitySettings>,
  entityPath: string,
): EntitySettings {
  const merged: EntitySettings = { ...base };
  for (const [key, value] of Object.entries(changes) as [keyof EntitySettings, unknown][]) {
    if (value === undefined) continue;
    (merged as unknown as Record<string, unknown>)[key] = value;
    const range = RANGES[key];
    if (range && typeof value === "number") checkRange(range, value, entityPath);
  }
  return merged;
}

function checkRange(range: Range & { field: string }, value: number, entityPath: string): void {
  if (Number.isFinite(value) && value >= range.min && value <= range.max) return;
  const show = (n: number) => `${n / range.scale}${range.unit}`;
  throw new InvalidArgumentError(
    `properties.${range.field}`,
    `properties.${range.field} must be between ${show(range.min)} and ${show(range.max)}; got ${show(value)}.`,
    { entityPath },
  );
}
