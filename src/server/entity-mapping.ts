/**
 * What the queue, topic and subscription mappings share: durations and byte counts between
 * the API and the broker's settings, and an entity's runtime figures.
 */
import { create } from "@bufbuild/protobuf";
import { type Duration, durationFromMs, durationMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type EntityRuntimeInfo,
  EntityRuntimeInfoSchema,
} from "../../gen/ts/sessionbus/v1/queue_pb.js";
import type { EntityRuntime } from "../broker/entities/entity-streams.js";
import type { EntityRecord } from "../store/entity-record.js";

export function runtimeToProto(record: EntityRecord, runtime: EntityRuntime): EntityRuntimeInfo {
  return create(EntityRuntimeInfoSchema, {
    activeMessageCount: BigInt(runtime.activeMessageCount),
    scheduledMessageCount: BigInt(runtime.scheduledMessageCount),
    deferredMessageCount: BigInt(runtime.deferredMessageCount),
    deadLetterMessageCount: BigInt(runtime.deadLetterMessageCount),
    sessionCount: BigInt(runtime.sessionCount),
    sizeBytes: BigInt(runtime.sizeBytes),
    createdAt: timestampFromMs(record.createdAt),
    updatedAt: timestampFromMs(record.updatedAt),
  });
}

/** A default time to live for the API: none when it is 0. */
export function ttl(value: number): Duration | undefined {
  return value > 0 ? durationFromMs(value) : undefined;
}

/** A duration a request set, in milliseconds. */
export function ms(d: Duration | undefined): number | undefined {
  return d === undefined ? undefined : durationMs(d);
}

/** A byte count a request set. */
export function num(n: bigint | undefined): number | undefined {
  return n === undefined ? undefined : Number(n);
}
