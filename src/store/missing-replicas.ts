import type { JetStreamManager } from "@nats-io/jetstream";
import type { ReplicaCount } from "./replicas.js";
import { HEALTH_STREAM } from "./subjects.js";

/** A replica not heard from for this long counts as down. */
const SILENT_NS = 5e9;

/**
 * Why JetStream may be unable to place a new stream's `replicas` copies, in words, or
 * undefined when nothing says so (one replica, or every server answering).
 *
 * nats-server 2.9.10 does not say it: asked to create a stream with 3 replicas while one of
 * 3 servers is down, it answers nothing once its meta group has noticed (the request times
 * out), or places a replica on the dead server before then. What does tell is the write
 * probe's stream SB_HEALTH, which has `replicas` copies on the same cluster: its stream info
 * names each follower with whether it is current and when it was last active. A follower
 * that is not current, offline, or silent for over 5 s is named, with its silence.
 */
export async function missingReplicas(
  jsm: JetStreamManager,
  replicas: ReplicaCount,
): Promise<string | undefined> {
  if (replicas === 1) return undefined;
  const info = await jsm.streams.info(HEALTH_STREAM);
  const cluster = info.cluster;
  const missing = (cluster?.replicas ?? []).filter(
    (peer) => peer.offline === true || !peer.current || peer.active > SILENT_NS,
  );
  if (cluster?.leader === undefined) {
    return `SESSIONBUS_REPLICAS=${replicas} needs a majority of the NATS cluster "${cluster?.name ?? "?"}", and its streams have no leader now`;
  }
  if (missing.length === 0) return undefined;
  const names = missing.map(
    (peer) => `${peer.name} (not heard from for ${Math.round(peer.active / 1e9)} s)`,
  );
  return `SESSIONBUS_REPLICAS=${replicas} puts a copy of every stream on ${replicas} servers of the NATS cluster "${cluster.name ?? "?"}", and ${names.join(" and ")} ${missing.length === 1 ? "is" : "are"} down or behind; new streams can be placed once ${missing.length === 1 ? "it is" : "they are"} back`;
}
