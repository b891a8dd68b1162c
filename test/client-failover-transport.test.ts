/**
 * The SDK's failover transport (src/client/failover/) without a broker: which failures move
 * a client with several addresses to the next broker, which calls are repeated there, and
 * that calls tied to a broker (a session's, a settlement's) never move. The brokers are
 * fake transports that answer or fail as each test says; what a real connection failure
 * looks like (the errors below) was read from connect-node against a broker killed with
 * SIGKILL (test/client-failover.test.ts runs that).
 */
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AdminService } from "../gen/ts/sessionbus/v1/admin_service_pb.js";
import { ErrorDetailSchema } from "../gen/ts/sessionbus/v1/error_detail_pb.js";
import { MessagingService } from "../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { BROKER_ROUTE, BrokerRoute } from "../src/client/failover/broker-route.js";
import { connectionFailure } from "../src/client/failover/connection-failure.js";
import {
  type FailoverEvent,
  FailoverTransport,
} from "../src/client/failover/failover-transport.js";
import { RETRY_AFTER_BROKEN_CONNECTION } from "../src/client/failover/retry-policy.js";

/** What connect-node throws when no connection can be made. */
function refused(): ConnectError {
  const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), {
    code: "ECONNREFUSED",
    syscall: "connect",
  });
  return new ConnectError(cause.message, Code.Unavailable, undefined, undefined, cause);
}

/** What connect-node throws for calls under way when the broker's process is killed. */
function broken(): ConnectError {
  return new ConnectError("http/2 stream closed with error code CANCEL (0x8)", Code.Canceled);
}

/** The broker's own answer that its store did not respond. */
function storeUnavailable(): ConnectError {
  return new ConnectError("NATS JetStream did not answer.", Code.Unavailable, undefined, [
    { desc: ErrorDetailSchema, value: { reason: "STORE_UNAVAILABLE" } },
  ]);
}

type Outcome = "ok" | (() => unknown);

/** A broker as a transport: records the methods called and answers from a script. */
class FakeBroker implements Transport {
  readonly calls: string[] = [];
  /** Outcomes of the next calls, in order; "ok" when the script is used up. */
  readonly script: Outcome[] = [];

  constructor(readonly url: string) {}

  async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
  ): Promise<UnaryResponse<I, O>> {
    this.calls.push(method.name);
    const outcome = this.script.shift() ?? "ok";
    if (outcome !== "ok") throw outcome();
    return {
      stream: false,
      service: method.parent,
      method,
      header: new Headers(),
      trailer: new Headers(),
      message: create(method.output),
    };
  }

  async stream<I extends DescMessage, O extends DescMessage>(): Promise<StreamResponse<I, O>> {
    throw new Error("not used here");
  }
}

function twoBrokers() {
  const a = new FakeBroker("http://a:50051");
  const b = new FakeBroker("http://b:50051");
  const events: FailoverEvent[] = [];
  const transport = new FailoverTransport(
    [
      { url: a.url, transport: a },
      { url: b.url, transport: b },
    ],
    (event) => events.push(event),
  );
  return { a, b, events, transport };
}

const { send, ...messaging } = MessagingService.method;
const admin = AdminService.method;

function sendTo(transport: Transport, messageIds: string[], signal?: AbortSignal) {
  return transport.unary(
    send,
    signal,
    10_000,
    undefined,
    { entityPath: "orders", messages: messageIds.map((messageId) => ({ messageId })) },
    undefined,
  );
}

function call<I extends DescMessage, O extends DescMessage>(
  transport: Transport,
  method: DescMethodUnary<I, O>,
  route?: BrokerRoute,
) {
  const values = route === undefined ? undefined : createContextValues().set(BROKER_ROUTE, route);
  return transport.unary(method, undefined, 10_000, undefined, {} as MessageInitShape<I>, values);
}

describe("connection failures", () => {
  it("are told apart from the broker's answers and the caller's cancellation", () => {
    expect(connectionFailure(refused(), undefined)).toBe("unsent");
    expect(connectionFailure(broken(), undefined)).toBe("broken");
    const refusedStream = new ConnectError(
      "http/2 stream closed with error code REFUSED_STREAM (0x7)",
      Code.Unavailable,
    );
    expect(connectionFailure(refusedStream, undefined)).toBe("unsent");
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    expect(
      connectionFailure(
        new ConnectError(reset.message, Code.Aborted, undefined, undefined, reset),
        undefined,
      ),
    ).toBe("broken");

    expect(connectionFailure(storeUnavailable(), undefined)).toBeUndefined();
    expect(
      connectionFailure(new ConnectError("late", Code.DeadlineExceeded), undefined),
    ).toBeUndefined();
    const aborted = new AbortController();
    aborted.abort();
    expect(connectionFailure(broken(), aborted.signal)).toBeUndefined();
    expect(connectionFailure(new Error("a bug"), undefined)).toBeUndefined();
  });
});

describe("FailoverTransport", () => {
  it("sends any call, a Send without message ids too, to the next broker when the first cannot be reached", async () => {
    const { a, b, events, transport } = twoBrokers();
    a.script.push(refused);
    await sendTo(transport, [""]);
    expect(a.calls).toEqual(["Send"]);
    expect(b.calls).toEqual(["Send"]);
    expect(transport.activeUrl).toBe(b.url);
    expect(events.map(({ from, to }) => ({ from, to }))).toEqual([{ from: a.url, to: b.url }]);
    // It stays there.
    await call(transport, admin.getQueue);
    expect(b.calls).toEqual(["Send", "GetQueue"]);
  });

  it("does not repeat a Send without message ids whose connection broke under it, but moves on", async () => {
    const { a, b, transport } = twoBrokers();
    a.script.push(broken);
    await expect(sendTo(transport, [""])).rejects.toMatchObject({ code: Code.Canceled });
    expect(b.calls).toEqual([]);
    expect(transport.activeUrl).toBe(b.url);
    // One message without an id is enough to keep the batch from being repeated.
    b.script.push(broken);
    await expect(sendTo(transport, ["m-1", ""])).rejects.toMatchObject({ code: Code.Canceled });
    expect(a.calls).toEqual(["Send"]);
  });

  it("repeats a Send whose messages all carry ids on the next broker", async () => {
    const { a, b, transport } = twoBrokers();
    a.script.push(broken);
    await sendTo(transport, ["m-1", "m-2"]);
    expect(a.calls).toEqual(["Send"]);
    expect(b.calls).toEqual(["Send"]);
  });

  it("repeats reads, accepts and updates after a broken connection, never creates or deletes", async () => {
    for (const [method, repeated] of [
      [admin.getQueue, true],
      [messaging.peek, true],
      [messaging.acceptSession, true],
      [admin.updateQueue, true],
      [admin.createQueue, false],
      [admin.deleteQueue, false],
      [messaging.requestReply, false],
      [messaging.closeSession, false],
      [admin.regenerateAuthorizationRuleKey, false],
    ] as const) {
      const { a, b, transport } = twoBrokers();
      a.script.push(broken);
      const outcome = call(transport, method as DescMethodUnary<DescMessage, DescMessage>);
      if (repeated) await outcome;
      else await expect(outcome).rejects.toBeInstanceOf(ConnectError);
      expect(b.calls, method.name).toEqual(repeated ? [method.name] : []);
      expect(transport.activeUrl).toBe(b.url);
    }
  });

  it("stays with its broker on the broker's own errors and on the caller's cancellation", async () => {
    const { a, b, events, transport } = twoBrokers();
    a.script.push(storeUnavailable);
    await expect(call(transport, admin.getQueue)).rejects.toMatchObject({ code: Code.Unavailable });
    const aborted = new AbortController();
    a.script.push(() => {
      aborted.abort();
      return broken();
    });
    await expect(sendTo(transport, ["m-1"], aborted.signal)).rejects.toBeInstanceOf(ConnectError);
    expect(b.calls).toEqual([]);
    expect(events).toEqual([]);
    expect(transport.activeUrl).toBe(a.url);
  });

  it("tries each broker once per call, then gives the last failure", async () => {
    const { a, b, events, transport } = twoBrokers();
    a.script.push(refused);
    b.script.push(refused);
    await expect(call(transport, admin.getQueue)).rejects.toMatchObject({ code: Code.Unavailable });
    expect([a.calls, b.calls]).toEqual([["GetQueue"], ["GetQueue"]]);
    // Around the list: the first broker again.
    expect(events.map((e) => e.to)).toEqual([b.url, a.url]);
    await call(transport, admin.getQueue);
    expect(a.calls).toEqual(["GetQueue", "GetQueue"]);
  });

  it("keeps a route's calls on the broker that answered its first, and fails them once that connection failed", async () => {
    const { a, b, transport } = twoBrokers();
    const route = new BrokerRoute();
    await call(transport, messaging.acceptSession, route);
    expect(route.broker).toBe(0);
    expect(transport.routeFailure(route)).toBeUndefined();

    // Another call finds the connection to the first broker failed: the route is lost
    // without anything being sent, neither to the dead broker nor to the other one.
    a.script.push(broken);
    await call(transport, admin.getQueue);
    expect(transport.routeFailure(route)?.url).toBe(a.url);
    await expect(call(transport, messaging.renewSessionLock, route)).rejects.toMatchObject({
      code: Code.Unavailable,
    });
    expect(a.calls).toEqual(["AcceptSession", "GetQueue"]);
    expect(b.calls).toEqual(["GetQueue"]);

    // A route of the second broker fails on its own connection's failure, and does not move.
    const second = new BrokerRoute();
    await call(transport, messaging.acceptSession, second);
    expect(second.broker).toBe(1);
    b.script.push(refused);
    await expect(call(transport, messaging.renewSessionLock, second)).rejects.toMatchObject({
      code: Code.Unavailable,
    });
    expect(transport.routeFailure(second)?.url).toBe(b.url);
    expect(a.calls).toEqual(["AcceptSession", "GetQueue"]);
  });

  it("has a retry rule for every method of both services", () => {
    const methods = [...MessagingService.methods, ...AdminService.methods].map((m) => m.name);
    expect(Object.keys(RETRY_AFTER_BROKEN_CONNECTION).sort()).toEqual([...methods].sort());
  });
});
