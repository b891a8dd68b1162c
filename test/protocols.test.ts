/**
 * gRPC on the gRPC port, and on the HTTP port gRPC-Web and the Connect protocol, each with
 * the binary and the JSON encoding, over HTTP/2 (h2c) and HTTP/1.1: a message sent,
 * received in a session, abandoned and completed reads the same in every one of them, and
 * an error arrives with its code, message and ErrorDetail. Clients: connect-node's
 * transports; the grpc-js client of test/support creates the queues and checks that nothing
 * is left.
 */
import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { ErrorDetailSchema } from "../gen/ts/sessionbus/v1/error_detail_pb.js";
import type { ReceivedMessage } from "../gen/ts/sessionbus/v1/message_pb.js";
import { Disposition, MessagingService } from "../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { brokerPerFile } from "./support/broker-per-file.js";
import { uniqueName } from "./support/grpc-client.js";
import { type SessionTestBroker, startSessionBroker } from "./support/session-broker.js";
import { rootTokenInterceptor } from "./support/test-credentials.js";

let running: SessionTestBroker;
brokerPerFile(startSessionBroker, (started) => {
  running = started;
});

const protocols: [string, (baseUrl: string) => Transport, ("grpc" | "http")?][] = [
  // gRPC itself, on the gRPC port (grpc-js), through connect-node's gRPC transport.
  [
    "gRPC, on the gRPC port",
    (baseUrl) => createGrpcTransport({ baseUrl, interceptors: [rootTokenInterceptor] }),
    "grpc",
  ],
  [
    "gRPC-Web, binary",
    (baseUrl) =>
      createGrpcWebTransport({ baseUrl, interceptors: [rootTokenInterceptor], httpVersion: "2" }),
  ],
  [
    "gRPC-Web, JSON",
    (baseUrl) =>
      createGrpcWebTransport({
        baseUrl,
        interceptors: [rootTokenInterceptor],
        httpVersion: "2",
        useBinaryFormat: false,
      }),
  ],
  [
    "Connect, binary",
    (baseUrl) =>
      createConnectTransport({ baseUrl, interceptors: [rootTokenInterceptor], httpVersion: "2" }),
  ],
  [
    "Connect, JSON",
    (baseUrl) =>
      createConnectTransport({
        baseUrl,
        interceptors: [rootTokenInterceptor],
        httpVersion: "2",
        useBinaryFormat: false,
      }),
  ],
  // Browsers and curl without --http2-prior-knowledge speak HTTP/1.1 to the same port.
  [
    "gRPC-Web, binary, HTTP/1.1",
    (baseUrl) =>
      createGrpcWebTransport({ baseUrl, interceptors: [rootTokenInterceptor], httpVersion: "1.1" }),
  ],
  [
    "Connect, JSON, HTTP/1.1",
    (baseUrl) =>
      createConnectTransport({
        baseUrl,
        interceptors: [rootTokenInterceptor],
        httpVersion: "1.1",
        useBinaryFormat: false,
      }),
  ],
];

/** Reads a receive stream to its end (max_messages, or 10 s without a message). */
async function receiveAll(messages: AsyncIterable<{ event: { case?: string; value?: unknown } }>) {
  const received: ReceivedMessage[] = [];
  for await (const response of messages) {
    if (response.event.case === "message") received.push(response.event.value as ReceivedMessage);
  }
  return received;
}

const receiveFrom = (queue: string, session: { sessionId: string; lockToken: string }) => ({
  entityPath: queue,
  session,
  prefetch: 10,
  maxWait: durationFromMs(10_000),
});

describe.each(protocols)("%s", (_name, transportFor, port = "http") => {
  it("sends, receives in a session with every delivery field, and completes", async () => {
    const baseUrl = port === "grpc" ? running.broker.url : running.broker.httpUrl;
    const messaging = createClient(MessagingService, transportFor(baseUrl));
    const queue = uniqueName("protocols");
    await running.client.createSessionQueue(queue, { maxDeliveryCount: 5 });
    const sent = await messaging.send({
      entityPath: queue,
      messages: [1, 2, 3].map((n) => ({
        sessionId: "s",
        messageId: `m-${n}`,
        subject: "order",
        body: new TextEncoder().encode(`body ${n}`),
        applicationProperties: { step: { value: { case: "intValue", value: BigInt(n) } } },
      })),
    });
    expect(sent.results.map((r) => r.sequenceNumber)).toEqual([1n, 2n, 3n]);

    const { session } = await messaging.acceptSession({ entityPath: queue, sessionId: "s" });
    const ref = { sessionId: "s", lockToken: session?.lockToken ?? "" };
    const before = Date.now();
    const [first] = await receiveAll(
      messaging.receiveStream({ ...receiveFrom(queue, ref), maxMessages: 1 }),
    );
    expect(first?.sequenceNumber).toBe(1n);
    // Abandoned, it comes again with delivery count 2 and a new lock token, then the rest.
    await messaging.settle({
      entityPath: queue,
      session: ref,
      lockTokens: [first?.lockToken ?? ""],
      disposition: Disposition.ABANDON,
    });
    const all = await receiveAll(
      messaging.receiveStream({ ...receiveFrom(queue, ref), maxMessages: 3 }),
    );
    expect(all.map((m) => new TextDecoder().decode(m.message?.body))).toEqual([
      "body 1",
      "body 2",
      "body 3",
    ]);
    expect(all.map((m) => [m.sequenceNumber, m.deliveryCount])).toEqual([
      [1n, 2],
      [2n, 1],
      [3n, 1],
    ]);
    expect(all[0]?.lockToken).not.toBe(first?.lockToken);
    for (const [i, m] of all.entries()) {
      expect(m.lockToken).toMatch(/^[0-9a-f-]{36}$/);
      expect(m.lockedUntil && timestampMs(m.lockedUntil)).toBeGreaterThan(before);
      expect(m.message).toMatchObject({
        messageId: `m-${i + 1}`,
        sessionId: "s",
        subject: "order",
      });
      expect(m.message?.applicationProperties.step?.value).toEqual({
        case: "intValue",
        value: BigInt(i + 1),
      });
      expect(m.enqueuedTime).toBeDefined();
    }
    await messaging.settle({
      entityPath: queue,
      session: ref,
      lockTokens: all.map((m) => m.lockToken),
      disposition: Disposition.COMPLETE,
    });
    await messaging.closeSession({ entityPath: queue, session: ref });
    expect(await running.client.peekAll(queue)).toEqual([]);
  });

  it("answers an error with its code, message and ErrorDetail", async () => {
    const baseUrl = port === "grpc" ? running.broker.url : running.broker.httpUrl;
    const messaging = createClient(MessagingService, transportFor(baseUrl));
    const missing = uniqueName("protocols-missing");
    const error = await messaging
      .send({ entityPath: missing, messages: [{ body: new Uint8Array([1]) }] })
      .then(
        () => undefined,
        (failure: unknown) => ConnectError.from(failure),
      );
    expect(error?.code).toBe(Code.NotFound);
    expect(error?.rawMessage).toContain(missing);
    const [detail] = error?.findDetails(ErrorDetailSchema) ?? [];
    expect([detail?.reason, detail?.entityPath]).toEqual(["ENTITY_NOT_FOUND", missing]);
  });
});
