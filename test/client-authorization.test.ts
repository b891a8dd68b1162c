/**
 * The SDK's side of shared access authorization, without a socket: a stand-in for the broker
 * (createRouterTransport) that checks the `authorization` header of each call the way the
 * broker's contract says (HMAC-SHA256 over the url-encoded resource and the expiry, keyed
 * with the rule's key) and answers UNAUTHENTICATED / PERMISSION_DENIED with an ErrorDetail.
 * End-to-end tests against the broker are in client-sdk.test.ts.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createClient,
  createRouterTransport,
  type HandlerContext,
} from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import { AdminService } from "../gen/ts/sessionbus/v1/admin_service_pb.js";
import { ErrorDetailSchema } from "../gen/ts/sessionbus/v1/error_detail_pb.js";
import { MessagingService } from "../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { FramePipe } from "../src/client/frame-pipe.js";
import {
  createSasToken,
  createSessionBusClient,
  PermissionDeniedError,
  sasInterceptor,
  UnauthenticatedError,
} from "../src/client/index.js";

const KEY = "c2Vzc2lvbmJ1cy1jbGllbnQtYXV0aC10ZXN0LWtleQ==";
const RULE = "RootManageSharedAccessKey";
const CONNECTION_STRING = `Endpoint=sb://127.0.0.1:50051/;SharedAccessKeyName=${RULE};SharedAccessKey=${KEY};UseDevelopmentEmulator=true`;

function authFailure(code: Code, reason: string, message: string, missingRight = ""): ConnectError {
  return new ConnectError(message, code, undefined, [
    { desc: ErrorDetailSchema, value: { reason, missingRight } },
  ]);
}

/** The broker's check, written here from the contract: throws what the broker would answer. */
function verify(header: string | null): { sr: string; se: number } {
  if (header === null) throw authFailure(Code.Unauthenticated, "TOKEN_MISSING", "no token");
  const match = /^SharedAccessSignature (.*)$/.exec(header);
  const fields = new URLSearchParams(match?.[1] ?? "");
  const [sr, sig, se, skn] = ["sr", "sig", "se", "skn"].map((name) => fields.get(name));
  if (!match || !sr || !sig || !se || skn !== RULE) {
    throw authFailure(Code.Unauthenticated, "TOKEN_INVALID", "malformed token");
  }
  const expected = createHmac("sha256", KEY)
    .update(`${encodeURIComponent(sr)}\n${se}`)
    .digest();
  const given = Buffer.from(sig, "base64");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw authFailure(Code.Unauthenticated, "TOKEN_INVALID", "bad signature");
  }
  if (Number(se) <= Date.now() / 1000) {
    throw authFailure(Code.Unauthenticated, "TOKEN_EXPIRED", "expired");
  }
  return { sr, se: Number(se) };
}

/** A stand-in broker recording the verified token of each call by method name. */
function standIn(options?: Parameters<typeof createRouterTransport>[1]) {
  const calls: { method: string; sr: string; se: number }[] = [];
  const check = (context: HandlerContext) => {
    const token = verify(context.requestHeader.get("authorization"));
    calls.push({ method: context.method.name, ...token });
  };
  const routes = (router: ConnectRouter) => {
    router.service(AdminService, {
      deleteQueue(_request, context) {
        check(context);
        return {};
      },
      createQueue(request, context) {
        check(context);
        throw authFailure(
          Code.PermissionDenied,
          "MISSING_RIGHT",
          `Creating queue "${request.name}" needs the Manage right.`,
          "Manage",
        );
      },
    });
    router.service(MessagingService, {
      async *receiveStream(request, context) {
        check(context);
        yield {
          event: {
            case: "message",
            value: {
              message: { body: new TextEncoder().encode(`from ${request.entityPath}`) },
              lockToken: "lock-1",
              sequenceNumber: 1n,
              deliveryCount: 1,
            },
          },
        };
        await new Promise((resolve) => context.signal.addEventListener("abort", resolve));
      },
      async *settleStream(frames, context) {
        check(context);
        for await (const _frame of frames) yield {};
      },
    });
  };
  return { calls, transport: createRouterTransport(routes, options) };
}

describe("createSessionBusClient with a connection string", () => {
  it("sends a valid token for the namespace on unary calls, receive streams and settle streams", async () => {
    const broker = standIn();
    const client = createSessionBusClient({
      connectionString: CONNECTION_STRING,
      transport: broker.transport,
    });
    try {
      await client.deleteQueue("orders");
      const receiver = client.receiver("orders");
      const message = await receiver.receiveMessage({ maxWaitMs: 5_000 });
      expect(message?.text).toBe("from orders");
      await receiver.complete(message as NonNullable<typeof message>);
      await receiver.close();
    } finally {
      await client.close();
    }
    expect(broker.calls.map((c) => c.method)).toEqual([
      "DeleteQueue",
      "ReceiveStream",
      "SettleStream",
    ]);
    for (const call of broker.calls) {
      expect(call.sr).toBe("sb://127.0.0.1:50051/");
      // An hour, as the SDK documents; a few seconds of slack for a slow machine.
      expect(call.se - Date.now() / 1000).toBeGreaterThan(3590);
      expect(call.se - Date.now() / 1000).toBeLessThanOrEqual(3600);
    }
  });

  it("takes the broker's address from the connection string unless url is given", async () => {
    const derived = createSessionBusClient({ connectionString: CONNECTION_STRING });
    const overridden = createSessionBusClient({
      connectionString: CONNECTION_STRING,
      url: "http://127.0.0.1:7",
    });
    const tls = createSessionBusClient({
      connectionString: CONNECTION_STRING.replace(";UseDevelopmentEmulator=true", ""),
    });
    expect(derived.url).toBe("http://127.0.0.1:50051");
    expect(overridden.url).toBe("http://127.0.0.1:7");
    expect(tls.url).toBe("https://127.0.0.1:50051");
    await Promise.all([derived.close(), overridden.close(), tls.close()]);
  });

  it("points tokens at EntityPath when the connection string names one", async () => {
    const broker = standIn();
    const client = createSessionBusClient({
      connectionString: `${CONNECTION_STRING};EntityPath=orders`,
      transport: broker.transport,
    });
    await client.deleteQueue("orders");
    await client.close();
    expect(broker.calls[0]?.sr).toBe("sb://127.0.0.1:50051/orders");
  });

  it("refuses options without an address, or with two credentials, before any call", () => {
    expect(() => createSessionBusClient({})).toThrow(/needs the broker's address/);
    expect(() =>
      createSessionBusClient({ connectionString: CONNECTION_STRING, sharedAccessSignature: "x" }),
    ).toThrow(/either connectionString or sharedAccessSignature/);
    expect(() =>
      createSessionBusClient({ connectionString: "Endpoint=sb://h:1/;SharedAccessKeyName=r" }),
    ).toThrow(/no SharedAccessKey/);
  });
});

describe("authorization errors", () => {
  it("are UnauthenticatedError with the broker's reason when the call has no token", async () => {
    const broker = standIn();
    const client = createSessionBusClient({ transport: broker.transport });
    const error = await client.deleteQueue("orders").catch((e: unknown) => e);
    await client.close();
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(error).toMatchObject({ reason: "TOKEN_MISSING", code: Code.Unauthenticated });
  });

  it("are UnauthenticatedError (TOKEN_INVALID) for a key the broker does not know", async () => {
    const broker = standIn();
    const client = createSessionBusClient({
      connectionString: CONNECTION_STRING.replace(KEY, "d3Jvbmcta2V5"),
      transport: broker.transport,
    });
    const error = await client.deleteQueue("orders").catch((e: unknown) => e);
    await client.close();
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(error).toMatchObject({ reason: "TOKEN_INVALID" });
  });

  it("are PermissionDeniedError naming the missing right", async () => {
    const broker = standIn();
    const client = createSessionBusClient({
      connectionString: CONNECTION_STRING,
      transport: broker.transport,
    });
    const error = await client.createQueue("orders").catch((e: unknown) => e);
    await client.close();
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect(error).toMatchObject({
      reason: "MISSING_RIGHT",
      code: Code.PermissionDenied,
      missingRight: "Manage",
      message: 'Creating queue "orders" needs the Manage right.',
    });
  });

  it("keep their class for a reason this SDK does not know yet", async () => {
    const transport = createRouterTransport((router) =>
      router.service(AdminService, {
        deleteQueue() {
          throw authFailure(Code.PermissionDenied, "SOME_NEWER_REASON", "no");
        },
      }),
    );
    const client = createSessionBusClient({ transport });
    const error = await client.deleteQueue("orders").catch((e: unknown) => e);
    await client.close();
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect(error).toMatchObject({ reason: "SOME_NEWER_REASON" });
  });
});

describe("sharedAccessSignature", () => {
  const token = (lifetimeSeconds: number, resourceUri = "sb://127.0.0.1:50051/") =>
    createSasToken({
      resourceUri,
      keyName: RULE,
      key: KEY,
      expiresAtSeconds: Math.floor(Date.now() / 1000) + lifetimeSeconds,
    });

  it("sends a token given as a string, with the scheme word added when it lacks one", async () => {
    const broker = standIn();
    const bare = token(600).replace(/^SharedAccessSignature /, "");
    const client = createSessionBusClient({
      sharedAccessSignature: bare,
      transport: broker.transport,
    });
    await client.deleteQueue("a");
    await client.close();
    expect(broker.calls).toHaveLength(1);
  });

  it("asks a function for a token once, until that token is within five minutes of expiry", async () => {
    const broker = standIn();
    let asked = 0;
    let lifetime = 3600;
    const client = createSessionBusClient({
      transport: broker.transport,
      sharedAccessSignature: async () => {
        asked++;
        return token(lifetime);
      },
    });
    // Concurrent first calls share one request for a token.
    await Promise.all([client.deleteQueue("a"), client.deleteQueue("b"), client.deleteQueue("c")]);
    await client.deleteQueue("d");
    expect(asked).toBe(1);

    // Tokens with less than five minutes left are asked for before every call.
    lifetime = 120;
    asked = 0;
    const shortLived = createSessionBusClient({
      transport: broker.transport,
      sharedAccessSignature: () => {
        asked++;
        return token(lifetime);
      },
    });
    await shortLived.deleteQueue("a");
    await shortLived.deleteQueue("b");
    expect(asked).toBe(2);
    await Promise.all([client.close(), shortLived.close()]);
    expect(broker.calls).toHaveLength(6);
  });

  it("fails the call with UnauthenticatedError when the function fails, its error as cause", async () => {
    const broker = standIn();
    const failure = new Error("token service down");
    const client = createSessionBusClient({
      transport: broker.transport,
      sharedAccessSignature: () => Promise.reject(failure),
    });
    const error = await client.deleteQueue("a").catch((e: unknown) => e);
    await client.close();
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect((error as Error).message).toContain("token service down");
    expect(((error as Error).cause as Error).cause).toBe(failure);
    expect(broker.calls).toHaveLength(0);
  });
});

describe("sasInterceptor", () => {
  it("authorizes clients built on the generated code, unary and streaming", async () => {
    const broker = standIn({ transport: { interceptors: [sasInterceptor(CONNECTION_STRING)] } });
    await createClient(AdminService, broker.transport).deleteQueue({ name: "orders" });
    async function* oneFrame() {
      yield { entityPath: "orders", lockTokens: ["t"] };
    }
    const messaging = createClient(MessagingService, broker.transport);
    let answers = 0;
    for await (const _answer of messaging.settleStream(oneFrame())) answers++;
    expect(answers).toBe(1);
    expect(broker.calls.map((c) => c.method)).toEqual(["DeleteQueue", "SettleStream"]);
  });

  it("needs a credential", () => {
    expect(() => sasInterceptor({})).toThrow(/connectionString or a sharedAccessSignature/);
  });
});

describe("streams of frames (SettleStream)", () => {
  it("go to a new stream, with a new token, before the one they were opened with could expire", async () => {
    let opened = 0;
    const pipe = new FramePipe<number, number>(
      async function* (frames) {
        opened++;
        for await (const frame of frames) yield frame;
      },
      0,
      240_000,
    );
    const now = vi.spyOn(Date, "now").mockReturnValue(1_000_000);
    try {
      expect(await pipe.frame(1)).toBe(1);
      now.mockReturnValue(1_000_000 + 239_000);
      expect(await pipe.frame(2)).toBe(2);
      expect(opened).toBe(1);
      now.mockReturnValue(1_000_000 + 240_000);
      expect(await pipe.frame(3)).toBe(3);
      expect(opened).toBe(2);
    } finally {
      now.mockRestore();
      await pipe.close();
    }
  });
});
