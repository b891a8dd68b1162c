import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Subscription,
  type SubscriptionProperties,
  SubscriptionSchema,
  type Topic,
  type TopicProperties,
  TopicSchema,
} from "../../gen/ts/sessionbus/v1/topic_pb.js";
import type {
  SubscriptionSettingChanges,
  SubscriptionView,
} from "../broker/topics/subscription-admin.js";
import type { TopicSettingChanges, TopicView } from "../broker/topics/topic-admin.js";
import { ms, num, runtimeToProto, ttl } from "./entity-mapping.js";

/** The fields a topic request sets (unset fields stay undefined). */
export function topicSettingsFromProto(p: TopicProperties | undefined): TopicSettingChanges {
  if (!p) return {};
  return {
    defaultMessageTtlMs: ms(p.defaultMessageTtl),
    maxMessageSizeBytes: num(p.maxMessageSizeBytes),
    requiresDuplicateDetection: p.requiresDuplicateDetection,
    duplicateDetectionWindowMs: ms(p.duplicateDetectionWindow),
    maxSizeBytes: num(p.maxSizeBytes),
  };
}

export function subscriptionSettingsFromProto(
  p: SubscriptionProperties | undefined,
): SubscriptionSettingChanges {
  if (!p) return {};
  return {
    requiresSession: p.requiresSession,
    lockDurationMs: ms(p.lockDuration),
    maxDeliveryCount: p.maxDeliveryCount,
    defaultMessageTtlMs: ms(p.defaultMessageTtl),
    deadLetteringOnMessageExpiration: p.deadLetteringOnMessageExpiration,
    maxSessionStateSizeBytes: num(p.maxSessionStateSizeBytes),
  };
}

export function topicToProto(view: TopicView): Topic {
  const s = view.record.settings;
  return create(TopicSchema, {
    name: view.record.name,
    properties: {
      defaultMessageTtl: ttl(s.defaultMessageTtlMs),
      maxMessageSizeBytes: BigInt(s.maxMessageSizeBytes),
      requiresDuplicateDetection: s.requiresDuplicateDetection,
      duplicateDetectionWindow: durationFromMs(s.duplicateDetectionWindowMs),
      maxSizeBytes: BigInt(s.maxSizeBytes),
    },
    runtimeInfo: runtimeToProto(view.record, view.runtime),
    subscriptionCount: view.subscriptionCount,
  });
}

export function subscriptionToProto(view: SubscriptionView): Subscription {
  const s = view.record.settings;
  return create(SubscriptionSchema, {
    topicName: view.topicName,
    name: view.name,
    properties: {
      requiresSession: s.requiresSession,
      lockDuration: durationFromMs(s.lockDurationMs),
      maxDeliveryCount: s.maxDeliveryCount,
      defaultMessageTtl: ttl(s.defaultMessageTtlMs),
      deadLetteringOnMessageExpiration: s.deadLetteringOnMessageExpiration,
      maxSessionStateSizeBytes: BigInt(s.maxSessionStateSizeBytes),
    },
    runtimeInfo: runtimeToProto(view.record, view.runtime),
  });
}
