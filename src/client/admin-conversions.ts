/**
 * Conversions the admin calls share: milliseconds and byte counts to and from the wire, and
 * an entity's runtime figures.
 */
import { type Duration, durationFromMs, durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import type { EntityRuntimeInfo as ProtoRuntimeInfo } from "../../gen/ts/sessionbus/v1/queue_pb.js";

/**
 * Figures of a queue, topic or subscription at the time of the request: they include every
 * write made through the same broker before the request, and writes through other brokers
 * on the same NATS server from at most 1 s before it.
 */
export interface EntityRuntimeInfo {
  activeMessageCount: number;
  scheduledMessageCount: number;
  deferredMessageCount: number;
  deadLetterMessageCount: number;
  sessionCount: number;
  sizeBytes: number;
  createdAt: Date | undefined;
  updatedAt: Date | undefined;
  accessedAt: Date | undefined;
}

export function fromRuntimeInfo(r: ProtoRuntimeInfo | undefined): EntityRuntimeInfo {
  return {
    activeMessageCount: Number(r?.activeMessageCount ?? 0),
    scheduledMessageCount: Number(r?.scheduledMessageCount ?? 0),
    deferredMessageCount: Number(r?.deferredMessageCount ?? 0),
    deadLetterMessageCount: Number(r?.deadLetterMessageCount ?? 0),
    sessionCount: Number(r?.sessionCount ?? 0),
    sizeBytes: Number(r?.sizeBytes ?? 0),
    createdAt: r?.createdAt ? timestampDate(r.createdAt) : undefined,
    updatedAt: r?.updatedAt ? timestampDate(r.updatedAt) : undefined,
    accessedAt: r?.accessedAt ? timestampDate(r.accessedAt) : undefined,
  };
}

export function duration(milliseconds: number | undefined): Duration | undefined {
  return milliseconds === undefined ? undefined : durationFromMs(milliseconds);
}

export function ms(d: Duration | undefined): number | undefined {
  return d === undefined ? undefined : durationMs(d);
}

export function int64(n: number | undefined): bigint | undefined {
  return n === undefined ? undefined : BigInt(n);
}
