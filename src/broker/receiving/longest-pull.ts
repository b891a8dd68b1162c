/** One nats-server: it ends its pulls itself when it stops, so a pull may wait long. */
const SINGLE_COPY_PULL_MS = 30_000;
/** Replicated: see longestPullMs. */
const REPLICATED_PULL_MS = 10_000;

/**
 * How long one pull of a receive stream waits at most before the receiver pulls again.
 *
 * With replicas, a pull waits at one server, the consumer's leader, and nothing tells it
 * when that stops being the place where messages show up: the leader is killed, or moves, or
 * (measured after two of three nodes were restarted: test/store-health.test.ts) sits on a
 * copy of the stream that was still catching up. A message sent then reached the receiver
 * only when its 30 s pull expired. The pull's heartbeats (every half of it) notice a dead
 * leader no sooner. So replicated stores pull for at most 10 s: a waiting receiver costs one
 * pull request per 10 s, and a message waits at most about that long after a failover.
 */
export function longestPullMs(replicas: number): number {
  return replicas > 1 ? REPLICATED_PULL_MS : SINGLE_COPY_PULL_MS;
}
