/** What the store keeps about an entity, in the registry bucket. */
export interface EntitySettings {
  requiresSession: boolean;
  lockDurationMs: number;
  maxDeliveryCount: number;
  /** 0: messages do not expire unless they say so. */
  defaultMessageTtlMs: number;
  deadLetteringOnMessageExpiration: boolean;
  maxMessageSizeBytes: number;
  maxSessionStateSizeBytes: number;
  requiresDuplicateDetection: boolean;
  duplicateDetectionWindowMs: number;
  maxSizeBytes: number;
}

export interface EntityRecord {
  kind: "queue";
  /** Name as first written. */
  name: string;
  /** Random id naming the entity's streams, so a re-created entity starts empty. */
  streamId: string;
  settings: EntitySettings;
  createdAt: number;
  updatedAt: number;
}

export function deadLetterStreamId(streamId: string): string {
  return `${streamId}-dlq`;
}
