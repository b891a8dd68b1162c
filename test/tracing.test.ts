/**
 * OpenTelemetry traces: with no tracer provider registered the SDK adds nothing to a
 * message; with one (an in-memory exporter here, as an application's OpenTelemetry SDK
 * would be), a TS consumer's span links to its TS producer's through the message's
 * Diagnostic-Id, and the broker's server spans are children of the SDK's calls.
 */
import { randomUUID } from "node:crypto";
import { type SpanContext, SpanKind, trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSessionbus } from "../src/app.js";
import {
  createSessionBusClient,
  createSessionProcessor,
  type SessionBusClient,
} from "../src/client/index.js";
import { startInProcessBroker } from "./support/grpc-broker.js";
import { testConnectionString } from "./support/test-credentials.js";

let broker: RunningSessionbus;
let client: SessionBusClient;
const queues: string[] = [];

beforeAll(async () => {
  broker = await startInProcessBroker();
  client = createSessionBusClient({ connectionString: testConnectionString(broker.url) });
});

afterAll(async () => {
  for (const queue of queues) await client.deleteQueue(queue).catch(() => undefined);
  await client?.close();
  await broker?.close();
  trace.disable();
});

async function newQueue(options: { requiresSession?: boolean } = {}): Promise<string> {
  const queue = `tracing-${randomUUID()}`;
  await client.createQueue(queue, options);
  queues.push(queue);
  return queue;
}

function traceparentOf(span: SpanContext): string {
  return `00-${span.traceId}-${span.spanId}-0${span.traceFlags}`;
}

describe("without a tracer provider", () => {
  it("sends messages as they are: no Diagnostic-Id", async () => {
    const queue = await newQueue();
    await client.sender(queue).send({ body: "untraced" });
    const receiver = client.receiver(queue, { receiveMode: "receiveAndDelete" });
    const message = await receiver.receiveMessage({ maxWaitMs: 10_000 });
    await receiver.close();
    expect(message?.text).toBe("untraced");
    expect(message?.applicationProperties).toEqual({});
  });
});

describe("with a tracer provider", () => {
  const exporter = new InMemorySpanExporter();

  beforeAll(() => {
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    expect(trace.setGlobalTracerProvider(provider)).toBe(true);
  });

  const spans = () => exporter.getFinishedSpans();
  const named = (name: string): ReadableSpan[] => spans().filter((span) => span.name === name);
  const one = (name: string): ReadableSpan => {
    const found = named(name);
    expect(found, `spans named "${name}" among ${spans().map((s) => s.name)}`).toHaveLength(1);
    return found[0] as ReadableSpan;
  };
  /** Waits for a span made after the call that caused it returned (the broker's). */
  const eventually = async (name: string): Promise<ReadableSpan> => {
    const deadline = Date.now() + 5_000;
    while (named(name).length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return one(name);
  };

  it("links a TS consumer's span to its TS producer's", async () => {
    const queue = await newQueue();
    await client.sender(queue).send({ body: "traced", messageId: "m-1" });
    const receiver = client.receiver(queue);
    const message = await receiver.receiveMessage({ maxWaitMs: 10_000 });
    expect(message?.text).toBe("traced");
    await receiver.complete(message as NonNullable<typeof message>);
    await receiver.close();

    const send = one(`send ${queue}`);
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(send.attributes["messaging.destination.name"]).toBe(queue);
    expect(send.attributes["messaging.message.id"]).toBe("m-1");
    // The message carries its producer's traceparent, as Service Bus SDKs carry Diagnostic-Id.
    expect(message?.applicationProperties["Diagnostic-Id"]).toBe(traceparentOf(send.spanContext()));

    const receive = one(`receive ${queue}`);
    expect(receive.kind).toBe(SpanKind.CONSUMER);
    expect(receive.links.map((link) => link.context.spanId)).toEqual([send.spanContext().spanId]);
    expect(receive.links[0]?.context.traceId).toBe(send.spanContext().traceId);

    const complete = one(`complete ${queue}`);
    expect(complete.attributes["messaging.operation.type"]).toBe("settle");
    expect(complete.links[0]?.context.spanId).toBe(send.spanContext().spanId);

    // The broker's span of the Send call is a child of the producer's span.
    const served = await eventually("sessionbus.v1.MessagingService/Send");
    expect(served.kind).toBe(SpanKind.SERVER);
    expect(served.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect(served.spanContext().traceId).toBe(send.spanContext().traceId);
    expect(served.attributes["messaging.destination.name"]).toBe(queue);
  });

  it("traces accept, and a processor's handler in a process span linked to the producer", async () => {
    const queue = await newQueue({ requiresSession: true });
    await client.sender(queue).send({ sessionId: "s-1", body: "for the processor" });
    const producer = one(`send ${queue}`);
    let handled: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      handled = resolve;
    });
    const processor = createSessionProcessor(
      client,
      queue,
      {
        processMessage: () => handled(),
        processError: () => undefined,
      },
      { maxConcurrentSessions: 1, sessionIdleTimeoutMs: 200 },
    );
    await processor.start();
    await done;
    await processor.close();

    const accept = named(`accept ${queue}`)[0];
    expect(accept?.kind).toBe(SpanKind.CLIENT);
    const served = await eventually("sessionbus.v1.MessagingService/AcceptSession");
    expect(
      named(`accept ${queue}`).some(
        (span) => span.spanContext().spanId === served.parentSpanContext?.spanId,
      ),
    ).toBe(true);

    const process = one(`process ${queue}`);
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(process.attributes["sessionbus.session.id"]).toBe("s-1");
    expect(process.links[0]?.context.spanId).toBe(producer.spanContext().spanId);
  });

  it("links a request, its responder's handling and the reply", async () => {
    const requests = await newQueue();
    const replies = await newQueue({ requiresSession: true });
    const responder = client.createResponder(requests, (request) => ({
      body: `re: ${request.text}`,
    }));
    try {
      const reply = await client.requestReply(
        requests,
        { body: "ping" },
        { replyQueue: replies, timeoutMs: 20_000 },
      );
      expect(reply.text).toBe("re: ping");
    } finally {
      await responder.close();
    }
    const request = one(`request-reply ${requests}`);
    const handling = one(`process ${requests}`);
    expect(handling.links[0]?.context.spanId).toBe(request.spanContext().spanId);
    // The reply was sent inside the handling; the requester's span links to that send.
    const replySend = one(`send ${replies}`);
    expect(request.links.map((link) => link.context.spanId)).toContain(
      replySend.spanContext().spanId,
    );
    const served = await eventually("sessionbus.v1.MessagingService/RequestReply");
    expect(served.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
  });
});
