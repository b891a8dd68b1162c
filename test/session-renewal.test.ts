/**
 * A session held for many lock durations by renewing it, as every session processor does
 * (semantics §4, "The lock"): its open receive stream keeps delivering, in order, with
 * delivery count 1, and never ends while the lock is valid; also when the renewals go
 * through another broker process, and for a second stream opened under the same lock.
 */
import { setTimeout as delay, setImmediate as yieldToEvents } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import { bodyText, seconds, toMs, uniqueName } from "./support/grpc-client.js";
import { startSessionBroker } from "./support/session-broker.js";
import type { SessionClient, SessionReceiveStream, SessionRef } from "./support/session-client.js";

/** The shortest lock semantics allow: the test spans several of them. */
const LOCK_SECONDS = 5;
/** How often the holder renews: well inside the lock, as a processor would. */
const RENEW_EVERY_MS = 2_000;
/** How long the session is held: three lock durations. */
const HOLD_MS = 15_000;
/** Bound of one message's way from send to the open stream. */
const MESSAGE_BOUND_MS = 5_000;

let client: SessionClient;
const streams = brokerPerFile(startSessionBroker, (started) => {
  client = started.client;
});

const refOf = ({ sessionId, lockToken }: SessionRef): SessionRef => ({ sessionId, lockToken });

function receiver(on: SessionClient, entityPath: string, ref: SessionRef): SessionReceiveStream {
  const stream = on.receiveStream({ entityPath, session: refOf(ref), prefetch: 1 });
  streams.push(stream);
  return stream;
}

/** True while the call has no final status (it neither ended nor failed). */
async function isOpen(stream: SessionReceiveStream): Promise<boolean> {
  let ended = false;
  void stream.status.then(() => {
    ended = true;
  });
  await yieldToEvents();
  return !ended;
}

/**
 * The scenario, stretched over HOLD_MS: receive m1, renew halfway through the lock,
 * complete m1 after the original locked_until, renew, and go on sending, receiving and
 * completing one message per renewal on the one stream opened at the start. `renewer` is
 * the client the renewals go through.
 */
async function holdAndReceive(
  queue: string,
  sessionId: string,
  renewer: SessionClient,
): Promise<void> {
  await client.send(queue, [{ sessionId, body: Buffer.from(`${sessionId} 1`) }]);
  const lock = await client.acceptNamed(queue, sessionId);
  const acceptedAt = Date.now();
  const originalExpiry = toMs(lock.lockedUntil);
  const stream = receiver(client, queue, lock);

  const m1 = await stream.next(MESSAGE_BOUND_MS);
  expect([bodyText(m1), m1.deliveryCount]).toEqual([`${sessionId} 1`, 1]);
  await delay(Math.max(0, acceptedAt + (LOCK_SECONDS * 1000) / 2 - Date.now()));
  let lockedUntil = toMs(await renewer.renewSessionLock(queue, lock));
  expect(lockedUntil).toBeGreaterThan(originalExpiry);
  // Past the lock as first given: the renewed lock still holds m1.
  await delay(Math.max(0, originalExpiry + 200 - Date.now()));
  await client.complete(queue, lock, m1.lockToken);

  const received: [string, number][] = [];
  let n = 1;
  while (Date.now() - acceptedAt < HOLD_MS) {
    const renewedAt = Date.now();
    lockedUntil = toMs(await renewer.renewSessionLock(queue, lock));
    expect(lockedUntil).toBeGreaterThan(Date.now());
    n++;
    await client.send(queue, [{ sessionId, body: Buffer.from(`${sessionId} ${n}`) }]);
    const message = await stream.next(MESSAGE_BOUND_MS);
    received.push([bodyText(message), message.deliveryCount]);
    await client.complete(queue, lock, message.lockToken);
    expect(await isOpen(stream)).toBe(true);
    await delay(Math.max(0, renewedAt + RENEW_EVERY_MS - Date.now()));
  }
  expect(n).toBeGreaterThanOrEqual(5);
  expect(received).toEqual(
    Array.from({ length: n - 1 }, (_, i) => [`${sessionId} ${i + 2}`, 1] as [string, number]),
  );
  expect(await isOpen(stream)).toBe(true);

  // A second stream under the same, still valid lock receives too.
  stream.cancel();
  await renewer.renewSessionLock(queue, lock);
  const second = receiver(client, queue, lock);
  await client.send(queue, [{ sessionId, body: Buffer.from(`${sessionId} last`) }]);
  const last = await second.next(MESSAGE_BOUND_MS);
  expect([bodyText(last), last.deliveryCount]).toEqual([`${sessionId} last`, 1]);
  await client.complete(queue, lock, last.lockToken);
  second.cancel();
  await client.closeSession(queue, lock);
  expect(await client.peek(queue)).toEqual([]);
}

describe("a session held for several lock durations by renewing it", () => {
  it("keeps delivering on its open stream, in order, with delivery count 1", async () => {
    const queue = uniqueName("srenew-one");
    await client.createSessionQueue(queue, { lockDuration: seconds(LOCK_SECONDS) });
    await holdAndReceive(queue, "renewed", client);
  }, 60_000);

  it("keeps delivering when the renewals go through another broker process", async () => {
    const queue = uniqueName("srenew-two");
    await client.createSessionQueue(queue, { lockDuration: seconds(LOCK_SECONDS) });
    const second = await startSessionBroker();
    try {
      await holdAndReceive(queue, "renewed-there", second.client);
    } finally {
      await second.close();
    }
  }, 60_000);
});
