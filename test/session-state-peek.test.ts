/**
 * PeekSessionState (issue 16): a session's state read without its lock, as the web console's
 * session page shows it, while another receiver holds the session.
 */
import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorDetailSchema } from "../gen/ts/sessionbus/v1/error_detail_pb.js";
import { type ConnectClients, connectClients } from "./support/connect-clients.js";
import { startInProcessBroker } from "./support/grpc-broker.js";
import { uniqueName } from "./support/grpc-client.js";

let broker: Awaited<ReturnType<typeof startInProcessBroker>>;
let clients: ConnectClients;
const created: string[] = [];

beforeAll(async () => {
  broker = await startInProcessBroker();
  clients = connectClients(broker.url);
});

afterAll(async () => {
  for (const name of created) await clients.admin.deleteQueue({ name }).catch(() => {});
  await broker?.close();
});

async function queue(requiresSession: boolean): Promise<string> {
  const name = uniqueName("peek-state");
  await clients.admin.createQueue({
    name,
    properties: { requiresSession, maxSessionStateSizeBytes: 4n * 1024n * 1024n },
  });
  created.push(name);
  return name;
}

const reasonOf = (error: unknown) =>
  ConnectError.from(error).findDetails(ErrorDetailSchema)[0]?.reason;

describe("PeekSessionState", () => {
  it("reads a small and a chunked state while another receiver holds the session", async () => {
    const name = await queue(true);
    const accepted = await clients.messaging.acceptSession({ entityPath: name, sessionId: "a" });
    const session = { sessionId: "a", lockToken: accepted.session?.lockToken ?? "" };
    const small = new TextEncoder().encode('{"step":3}');
    await clients.messaging.setSessionState({ entityPath: name, session, state: small });
    const peeked = await clients.messaging.peekSessionState({ entityPath: name, sessionId: "a" });
    expect(peeked.state).toEqual(small);

    const large = new Uint8Array(1_200_000).map((_, i) => i % 251);
    await clients.messaging.setSessionState({ entityPath: name, session, state: large });
    const chunked = await clients.messaging.peekSessionState({ entityPath: name, sessionId: "a" });
    expect(chunked.state).toEqual(large);
    // Still held by its receiver: peeking took no lock.
    await clients.messaging.renewSessionLock({ entityPath: name, session });
  });

  it("answers no state for a session that never had one", async () => {
    const name = await queue(true);
    const peeked = await clients.messaging.peekSessionState({
      entityPath: name,
      sessionId: "never",
    });
    expect(peeked.state).toBeUndefined();
  });

  it("refuses an entity without sessions and a session id over 128 characters", async () => {
    const plain = await queue(false);
    const error = await clients.messaging
      .peekSessionState({ entityPath: plain, sessionId: "a" })
      .catch((e) => e);
    expect(reasonOf(error)).toBe("NOT_SESSION_ENTITY");
    const sessions = await queue(true);
    const long = await clients.messaging
      .peekSessionState({ entityPath: sessions, sessionId: "x".repeat(129) })
      .catch((e) => e);
    expect(reasonOf(long)).toBe("INVALID_ARGUMENT");
  });
});
