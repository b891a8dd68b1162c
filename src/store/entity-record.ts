import type { RuleRecord } from "../rules/rule-record.js";

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

/** A subscription's place in its topic. */
export interface SubscriptionLink {
  /** Registry key of the topic. */
  topicKey: string;
  /** The topic's stream id, which names the subjects the subscription's copies keep. */
  topicStreamId: string;
  /** Position of the subscription's token in the topic's subjects (see subjects.ts). */
  slot: number;
}

export type EntityKind = "queue" | "topic" | "subscription";

export interface EntityRecord {
  kind: EntityKind;
  /** Name as first written. */
  name: string;
  /** Random id naming the entity's streams, so a re-created entity starts empty. */
  streamId: string;
  settings: EntitySettings;
  createdAt: number;
  updatedAt: number;
  /** Subscriptions only. */
  link?: SubscriptionLink;
  /** Subscriptions only: a copy is taken when any rule matches. */
  rules?: RuleRecord[];
  /**
   * When a message with its own time to live was first sent to the entity (a queue or a
   * topic); until then no session of it needs the expiry scan on accept.
   */
  expiringMessagesSince?: number;
  /** Topics only: the slot of each subscription, by subscription registry key. */
  slots?: Record<string, number>;
}

export function deadLetterStreamId(streamId: string): string {
  return `${streamId}-dlq`;
}
