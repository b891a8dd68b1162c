import { setTimeout as delay } from "node:timers/promises";
import { type ClusterInfo, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import type { ServerInfo } from "@nats-io/transport-node";

/** Copies JetStream can keep of a stream: one, or an odd number so that a majority decides. */
export const REPLICA_COUNTS = [1, 3, 5] as const;
export type ReplicaCount = (typeof REPLICA_COUNTS)[number];

/** JetStream API error codes (nats-server's errors.json). */
const NO_SUITABLE_PEERS = 10005; // "no suitable peers for placement"
const STREAM_NOT_FOUND = 10059;
const REPLICAS_NOT_SUPPORTED = 10074; // "replicas > 1 not supported in non-clustered mode"

/** How many streams the start-up upgrade changes at once. */
const UPGRADE_CONCURRENCY = 8;
/** How long a changed stream may take to settle, and how often that is looked at. */
const SETTLE_WAIT_MS = 30_000;
const SETTLE_POLL_MS = 100;

/** The start is refused: the NATS server or cluster cannot hold SESSIONBUS_REPLICAS copies. */
export class ReplicasRefusedError extends Error {
  override name = "ReplicasRefusedError";
}

/** A stream whose replica count the start changed. */
export interface ReplicaChange {
  stream: string;
  from: number;
  to: number;
}

/**
 * Refuses more than one replica on a NATS server that is not clustered, before anything is
 * asked of it. `server` is what the server said about itself when the connection was made.
 */
export function checkClustered(server: ServerInfo | undefined, replicas: ReplicaCount): void {
  if (replicas > 1 && server !== undefined && !server.cluster) throw notClustered(replicas);
}

/**
 * The refusal to throw when `error` says JetStream cannot place `replicas` copies of a
 * stream (a server that is not clustered, or fewer servers up than copies); undefined for
 * any other error. `server` gives the cluster's name and the client URLs of its servers.
 */
export function replicasRefusal(
  error: unknown,
  replicas: ReplicaCount,
  server: ServerInfo | undefined,
): ReplicasRefusedError | undefined {
  if (!(error instanceof JetStreamApiError)) return undefined;
  if (error.code === REPLICAS_NOT_SUPPORTED) return notClustered(replicas, error);
  if (error.code !== NO_SUITABLE_PEERS) return undefined;
  if (server !== undefined && !server.cluster) return notClustered(replicas, error);
  const size = server?.connect_urls?.length;
  const has = size === undefined ? "fewer servers up" : `cluster size ${size}: ${size} servers up`;
  const fits =
    size === undefined ? undefined : [...REPLICA_COUNTS].reverse().find((n) => n <= size);
  const advice =
    fits === undefined ? "Lower SESSIONBUS_REPLICAS" : `Set SESSIONBUS_REPLICAS=${fits}`;
  return new ReplicasRefusedError(
    `SESSIONBUS_REPLICAS=${replicas} is more than the NATS cluster "${server?.cluster ?? "?"}" can hold (${has}; JetStream: ${error.message}). ${advice}, or add servers; a server that is down cannot take copies.`,
    { cause: error },
  );
}

function notClustered(replicas: ReplicaCount, cause?: unknown): ReplicasRefusedError {
  return new ReplicasRefusedError(
    `SESSIONBUS_REPLICAS=${replicas} needs a NATS cluster of at least ${replicas} JetStream servers, but the NATS server is not clustered (cluster size 1). Set SESSIONBUS_REPLICAS=1, or point NATS_URL at a cluster (npm run cluster starts one on this machine).`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Brings the stream `name` to `replicas` copies in place (JetStream adds or removes peers and
 * moves its durable consumers along). Resolves with the change, or undefined when the stream
 * had that count already or does not exist (an entity deleted meanwhile).
 */
export async function bringStreamToReplicas(
  jsm: JetStreamManager,
  name: string,
  replicas: ReplicaCount,
): Promise<ReplicaChange | undefined> {
  let config: Awaited<ReturnType<JetStreamManager["streams"]["info"]>>["config"];
  try {
    config = (await jsm.streams.info(name)).config;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === STREAM_NOT_FOUND) return undefined;
    throw error;
  }
  const from = config.num_replicas;
  if (from === replicas) return undefined;
  await jsm.streams.update(name, { ...config, num_replicas: replicas });
  await waitUntilSettled(jsm, name, replicas);
  return { stream: name, from, to: replicas };
}

/**
 * Waits until the stream and each of its durable consumers has a leader and `replicas`
 * members. The update is answered before JetStream has formed the new groups; reading the
 * stream meanwhile (the registry's KV watch) waited 30 s in nats.js's retries in a test,
 * and a pull sent to a consumer between leaders can go unanswered until it expires.
 */
async function waitUntilSettled(
  jsm: JetStreamManager,
  name: string,
  replicas: ReplicaCount,
): Promise<void> {
  const deadline = Date.now() + SETTLE_WAIT_MS;
  while (!(await isSettled(jsm, name, replicas).catch(() => false))) {
    if (Date.now() > deadline) {
      throw new Error(
        `stream ${name} or one of its consumers has no leader or not ${replicas} replicas ${SETTLE_WAIT_MS / 1000} s after its replicas were changed; is a majority of the NATS cluster up?`,
      );
    }
    await delay(SETTLE_POLL_MS);
  }
}

async function isSettled(
  jsm: JetStreamManager,
  name: string,
  replicas: ReplicaCount,
): Promise<boolean> {
  const settled = (cluster: ClusterInfo | undefined) =>
    cluster?.leader !== undefined && 1 + (cluster.replicas?.length ?? 0) === replicas;
  if (!settled((await jsm.streams.info(name)).cluster)) return false;
  for await (const consumer of jsm.consumers.list(name)) {
    // Ephemeral consumers (KV watches) have one replica whatever their stream has.
    if (consumer.config.durable_name !== undefined && !settled(consumer.cluster)) return false;
  }
  return true;
}

/**
 * Brings every stream of `names` to `replicas`, a few at a time (an update to more copies
 * makes JetStream form a new group and copy the stream; thousands at once would swamp it).
 * Resolves with the changes made; rejects with the first failure, after the updates already
 * under way have ended.
 */
export async function bringStreamsToReplicas(
  jsm: JetStreamManager,
  names: readonly string[],
  replicas: ReplicaCount,
  concurrency = UPGRADE_CONCURRENCY,
): Promise<ReplicaChange[]> {
  const changes: ReplicaChange[] = [];
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < names.length) {
      const name = names[next++] as string;
      try {
        const change = await bringStreamToReplicas(jsm, name, replicas);
        if (change !== undefined) changes.push(change);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  if (failure !== undefined) throw failure.error;
  return changes;
}
