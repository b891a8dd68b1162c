import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Queue,
  type QueueProperties,
  QueueSchema,
} from "../../gen/ts/sessionbus/v1/queue_pb.js";
import type { QueueView } from "../broker/entities/queue-admin.js";
import type { EntitySettings } from "../store/entity-record.js";
import { ms, num, runtimeToProto, ttl } from "./entity-mapping.js";

/** The fields a request sets, as broker settings (unset fields stay undefined). */
export function settingsFromProto(p: QueueProperties | undefined): Partial<EntitySettings> {
  if (!p) return {};
  return {
    requiresSession: p.requiresSession,
    lockDurationMs: ms(p.lockDuration),
    maxDeliveryCount: p.maxDeliveryCount,
    defaultMessageTtlMs: ms(p.defaultMessageTtl),
    deadLetteringOnMessageExpiration: p.deadLetteringOnMessageExpiration,
    maxMessageSizeBytes: num(p.maxMessageSizeBytes),
    maxSessionStateSizeBytes: num(p.maxSessionStateSizeBytes),
    requiresDuplicateDetection: p.requiresDuplicateDetection,
    duplicateDetectionWindowMs: ms(p.duplicateDetectionWindow),
    maxSizeBytes: num(p.maxSizeBytes),
  };
}

export function queueToProto(view: QueueView): Queue {
  const { record, runtime } = view;
  const s = record.settings;
  return create(QueueSchema, {
    name: record.name,
    properties: {
      requiresSession: s.requiresSession,
      lockDuration: durationFromMs(s.lockDurationMs),
      maxDeliveryCount: s.maxDeliveryCount,
      defaultMessageTtl: ttl(s.defaultMessageTtlMs),
      deadLetteringOnMessageExpiration: s.deadLetteringOnMessageExpiration,
      maxMessageSizeBytes: BigInt(s.maxMessageSizeBytes),
      maxSessionStateSizeBytes: BigInt(s.maxSessionStateSizeBytes),
      requiresDuplicateDetection: s.requiresDuplicateDetection,
      duplicateDetectionWindow: durationFromMs(s.duplicateDetectionWindowMs),
      maxSizeBytes: BigInt(s.maxSizeBytes),
    },
    runtimeInfo: runtimeToProto(record, runtime),
  });
}
