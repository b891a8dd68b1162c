/**
 * Session state (semantics §4): read and written under the session lock, visible to the
 * next holder, kept after the messages are gone, cleared by setting nothing, limited by
 * max_session_state_size_bytes (up to 100 MiB, byte for byte); and ListSessions: sessions
 * with messages or a state, paged.
 */
import { createHash, randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import { bodyText, failure, uniqueName } from "./support/grpc-client.js";
import { type SessionTestBroker, startSessionBroker } from "./support/session-broker.js";
import {
  type SessionClient,
  type SessionInfo,
  type SessionRef,
  UNLIMITED_MESSAGE_SIZE,
} from "./support/session-client.js";

const KIB = 1024;
const MIB = 1024 * KIB;
const DEFAULT_STATE_LIMIT = 256 * KIB;

let running: SessionTestBroker;
let client: SessionClient;
/** Another receiver, on its own connection. */
let other: SessionClient;
const streams = brokerPerFile(startSessionBroker, (started) => {
  running = started;
  client = started.client;
  other = started.newClient();
});

const refOf = ({ sessionId, lockToken }: SessionRef): SessionRef => ({ sessionId, lockToken });

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Receives and completes the next message of a held session. */
async function completeNext(on: SessionClient, queue: string, lock: SessionRef): Promise<string> {
  const stream = on.receiveStream({ entityPath: queue, session: refOf(lock) });
  streams.push(stream);
  const message = await stream.next();
  await on.complete(queue, lock, message.lockToken);
  stream.cancel();
  return bodyText(message);
}

describe("session state", () => {
  it("is none at first, passes to the next holder, outlives the messages, and clears", async () => {
    const queue = uniqueName("sstate-life");
    await client.createSessionQueue(queue);
    await client.send(queue, [
      { sessionId: "cart", body: Buffer.from("add apples") },
      { sessionId: "cart", body: Buffer.from("add pears") },
    ]);

    // Holder A: no state yet; sets one.
    const a = await client.acceptNamed(queue, "cart");
    expect(await client.getSessionState(queue, a)).toBeUndefined();
    expect(await completeNext(client, queue, a)).toBe("add apples");
    await client.setSessionState(queue, a, Buffer.from("apples: 1"));
    expect((await client.getSessionState(queue, a))?.toString()).toBe("apples: 1");
    // Set replaces.
    await client.setSessionState(queue, a, Buffer.from('{"apples":1}'));
    await client.closeSession(queue, a);

    // Holder B, on another connection, sees it at once.
    const b = await other.acceptNamed(queue, "cart");
    expect((await other.getSessionState(queue, b))?.toString()).toBe('{"apples":1}');
    expect(await completeNext(other, queue, b)).toBe("add pears");
    await other.setSessionState(queue, b, Buffer.from('{"apples":1,"pears":1}'));
    await other.closeSession(queue, b);
    expect(await client.peek(queue, { sessionId: "cart" })).toEqual([]);

    // All messages completed: the state is still there for the next holder.
    const c = await client.acceptNamed(queue, "cart");
    const kept = await client.getSessionState(queue, c);
    expect(kept?.toString()).toBe('{"apples":1,"pears":1}');
    // Cleared by a set without state.
    await client.setSessionState(queue, c, undefined);
    expect(await client.getSessionState(queue, c)).toBeUndefined();
    await client.closeSession(queue, c);

    const d = await other.acceptNamed(queue, "cart");
    expect(await other.getSessionState(queue, d)).toBeUndefined();
    await other.closeSession(queue, d);
  });

  it("switches between small and large states, each read back whole", async () => {
    const queue = uniqueName("sstate-sizes");
    await client.createSessionQueue(queue, { maxSessionStateSizeBytes: 1024 * 1024 });
    const lock = await client.acceptNamed(queue, "mixed");
    // Around the size where a state moves out of the session record into chunks.
    const sizes = [10, 200 * 1024, 8 * 1024, 8 * 1024 + 1, 4 * 1024, 0, 600 * 1024, 1];
    for (const [i, size] of sizes.entries()) {
      const state = Buffer.alloc(size, i + 1);
      await client.setSessionState(queue, lock, size === 0 ? undefined : state);
      const read = await client.getSessionState(queue, lock);
      if (size === 0) expect(read).toBeUndefined();
      else expect(read?.equals(state), `state ${i} of ${size} bytes`).toBe(true);
    }
    await client.closeSession(queue, lock);
    const next = await other.acceptNamed(queue, "mixed");
    expect((await other.getSessionState(queue, next))?.equals(Buffer.alloc(1, 8))).toBe(true);
    await other.closeSession(queue, next);
  });

  it("refuses a state over the limit with SESSION_STATE_TOO_LARGE and keeps the old one", async () => {
    const queue = uniqueName("sstate-limit");
    await client.createSessionQueue(queue);
    const lock = await client.acceptNamed(queue, "big");
    const old = randomBytes(1_000);
    await client.setSessionState(queue, lock, old);

    const tooLarge = await failure(client.setSessionState(queue, lock, randomBytes(300 * KIB)));
    expect(tooLarge).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      reason: "SESSION_STATE_TOO_LARGE",
      sessionId: "big",
    });
    expect(await client.getSessionState(queue, lock)).toEqual(old);

    // One byte over the default (256 KiB) fails too; exactly the limit is fine.
    expect(
      await failure(client.setSessionState(queue, lock, randomBytes(DEFAULT_STATE_LIMIT + 1))),
    ).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: "SESSION_STATE_TOO_LARGE" });
    expect(await client.getSessionState(queue, lock)).toEqual(old);
    const atLimit = randomBytes(DEFAULT_STATE_LIMIT);
    await client.setSessionState(queue, lock, atLimit);
    expect(sha256((await client.getSessionState(queue, lock)) ?? Buffer.alloc(0))).toBe(
      sha256(atLimit),
    );
    await client.closeSession(queue, lock);
  });

  it("round-trips a 100 MiB state byte for byte", { timeout: 180_000 }, async () => {
    const big = running.newClient({
      channelOptions: UNLIMITED_MESSAGE_SIZE,
      deadlineMs: 150_000,
    });
    const queue = uniqueName("sstate-100mib");
    await big.createSessionQueue(queue, { maxSessionStateSizeBytes: 104_857_600 });
    const state = randomBytes(100 * MIB);
    const digest = sha256(state);

    const writer = await big.acceptNamed(queue, "huge");
    await big.setSessionState(queue, writer, state);
    await big.closeSession(queue, writer);

    // Read back by the next holder.
    const reader = await big.acceptNamed(queue, "huge");
    const read = await big.getSessionState(queue, reader);
    expect(read?.length).toBe(state.length);
    expect(sha256(read ?? Buffer.alloc(0))).toBe(digest);

    const [listed] = (await big.listSessions(queue, 10)).sessions;
    expect(listed).toMatchObject({ sessionId: "huge", stateSizeBytes: String(100 * MIB) });

    // Cleared again, so the test leaves no 100 MiB behind.
    await big.setSessionState(queue, reader, undefined);
    expect(await big.getSessionState(queue, reader)).toBeUndefined();
    await big.closeSession(queue, reader);
    await big.deleteCreatedQueues();
  });
});

describe("ListSessions", () => {
  it("lists sessions with messages or a state, and not sessions with neither", async () => {
    const queue = uniqueName("sstate-list");
    await client.createSessionQueue(queue);
    await client.send(queue, [
      { sessionId: "with-messages", body: Buffer.from("1") },
      { sessionId: "with-messages", body: Buffer.from("2") },
      { sessionId: "with-both", body: Buffer.from("1") },
      { sessionId: "drained", body: Buffer.from("1") },
    ]);
    // A session with only a state (never a message).
    const onlyState = await client.acceptNamed(queue, "only-state");
    await client.setSessionState(queue, onlyState, Buffer.from("abc"));
    await client.closeSession(queue, onlyState);
    // A session with messages and a state, held at the time of listing.
    const both = await client.acceptNamed(queue, "with-both");
    await client.setSessionState(queue, both, Buffer.from("12345"));
    // Sessions with neither: accepted but never used, drained, state cleared.
    await client.closeSession(queue, await client.acceptNamed(queue, "never-used"));
    const drained = await client.acceptNamed(queue, "drained");
    await completeNext(client, queue, drained);
    await client.closeSession(queue, drained);
    const cleared = await client.acceptNamed(queue, "cleared");
    await client.setSessionState(queue, cleared, Buffer.from("soon gone"));
    await client.setSessionState(queue, cleared, undefined);
    await client.closeSession(queue, cleared);

    const { sessions } = await client.listAllSessions(queue, 100);
    const byId = new Map<string, SessionInfo>(sessions.map((s) => [s.sessionId, s]));
    // In order of session id.
    expect(sessions.map((s) => s.sessionId)).toEqual(["only-state", "with-both", "with-messages"]);
    expect(byId.get("with-messages")).toMatchObject({
      messageCount: "2",
      locked: false,
      stateSizeBytes: "0",
    });
    expect(byId.get("only-state")).toMatchObject({
      messageCount: "0",
      locked: false,
      stateSizeBytes: "3",
    });
    expect(byId.get("with-both")).toMatchObject({
      messageCount: "1",
      locked: true,
      stateSizeBytes: "5",
    });
    expect(byId.get("with-both")?.lockedUntil).toEqual(both.lockedUntil);
    await client.closeSession(queue, both);
  });

  it("pages over 1,000 sessions, returning each exactly once", { timeout: 90_000 }, async () => {
    const queue = uniqueName("sstate-paging");
    await client.createSessionQueue(queue);
    const ids = Array.from({ length: 1_000 }, (_, i) => `session-${String(i).padStart(4, "0")}`);
    for (let from = 0; from < ids.length; from += 250) {
      await client.send(
        queue,
        ids
          .slice(from, from + 250)
          .map((sessionId) => ({ sessionId, body: Buffer.from(sessionId) })),
      );
    }

    const seen: string[] = [];
    let token = "";
    let pages = 0;
    for (;;) {
      const page = await client.listSessions(queue, 100, token);
      pages++;
      expect(page.sessions.length).toBeLessThanOrEqual(100);
      for (const s of page.sessions) expect(s.messageCount).toBe("1");
      seen.push(...page.sessions.map((s) => s.sessionId));
      if (page.nextPageToken === "") break;
      expect(pages).toBeLessThan(20);
      token = page.nextPageToken;
    }
    expect(seen).toHaveLength(1_000);
    expect(new Set(seen).size).toBe(1_000);
    expect(seen).toEqual([...ids].sort());
    expect(pages).toBeGreaterThanOrEqual(10);
    expect(pages).toBeLessThanOrEqual(11);
  });
});
