import type { MethodImplSpec } from "@connectrpc/connect";
import { Code, type ConnectError } from "@connectrpc/connect";
import {
  context as otelContext,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { log } from "../observability/logger.js";
import type { RpcObserver, RpcPort } from "../observability/metrics.js";
import { brokerTracer, parseTraceparent, tracingOn } from "../observability/trace-context.js";
import { toConnectError } from "./error-mapping.js";
import { GrpcCallContext } from "./grpc-call-context.js";
import type { RouteTable } from "./route-table.js";

type ImplOf<K extends MethodImplSpec["kind"]> = Extract<MethodImplSpec, { kind: K }>["impl"];
type HandlerContext = Parameters<ImplOf<"unary">>[1];

/** Where the observer reports each call's duration and code (the metrics). */
export interface RouteMetrics {
  rpc(method: string): RpcObserver;
}

/** gRPC's status code of a call that succeeded (connect's Code has no name for it). */
const OK = 0;

/** Services whose calls get no span and no change log (probes and tooling). */
const UNTRACED_SERVICES = new Set(["grpc.health.v1.Health"]);
const isReflection = (service: string) => service.startsWith("grpc.reflection.");

/** AdminService calls that change something: logged once they succeed. */
const CHANGES = /^(Create|Update|Delete|Regenerate)/;

/**
 * The route table with every method observed, on both ports: the call's duration goes to
 * a histogram by method and status code; with a tracer provider registered, the call runs
 * in a server span, child of the caller's `traceparent` header; an AdminService call that
 * changed something is logged (names only, never keys). Wraps the outside of the table, so
 * calls refused by authorization are counted too.
 */
export function observeRoutes(routes: RouteTable, metrics: RouteMetrics): RouteTable {
  return { ...routes, methods: routes.methods.map((spec) => observed(spec, metrics)) };
}

function observed(spec: MethodImplSpec, metrics: RouteMetrics): MethodImplSpec {
  const service = spec.method.parent.typeName;
  const name = `${service}/${spec.method.name}`;
  const record = metrics.rpc(name);
  const traced = !UNTRACED_SERVICES.has(service) && !isReflection(service);
  const logsChange = service === "sessionbus.v1.AdminService" && CHANGES.test(spec.method.name);
  const start = (request: unknown, context: HandlerContext): Call =>
    new Call(name, record, context, traced ? startSpan(name, request, context) : undefined);
  switch (spec.kind) {
    case "unary": {
      const impl = spec.impl;
      const wrapped: ImplOf<"unary"> = (request, context) => {
        const call = start(request, context);
        let answer: ReturnType<typeof impl>;
        try {
          answer = call.span
            ? otelContext.with(call.spanContext(), () => impl(request, context))
            : impl(request, context);
        } catch (error) {
          return Promise.reject(call.fail(error));
        }
        return Promise.resolve(answer).then(
          (response) => {
            call.end(OK);
            if (logsChange) logChange(spec.method.name, request);
            return response;
          },
          (error: unknown) => Promise.reject(call.fail(error)),
        );
      };
      return { ...spec, impl: wrapped };
    }
    case "server_streaming": {
      const impl = spec.impl;
      const wrapped: ImplOf<"server_streaming"> = (request, context) =>
        observedStream(start(request, context), impl(request, context));
      return { ...spec, impl: wrapped };
    }
    case "bidi_streaming": {
      const impl = spec.impl;
      const wrapped: ImplOf<"bidi_streaming"> = (requests, context) =>
        observedStream(start(undefined, context), impl(requests, context));
      return { ...spec, impl: wrapped };
    }
    case "client_streaming":
      throw new Error(`${name}: client streams are not observed (the API has none)`);
  }
}

/** A streaming call's responses, passed on; the call ends with the stream's end or error. */
async function* observedStream<T>(call: Call, responses: AsyncIterable<T>): AsyncIterable<T> {
  let ended = false;
  try {
    yield* responses;
    ended = true;
  } catch (error) {
    ended = true;
    throw call.fail(error);
  } finally {
    // Left without an end or an error: the client went away.
    if (!ended) call.end(Code.Canceled);
    else call.end(OK);
  }
}

/** One call being observed: when it started, its span, and how it ends. */
class Call {
  private readonly started = performance.now();
  done = false;

  constructor(
    private readonly name: string,
    private readonly record: RpcObserver,
    private readonly context: HandlerContext,
    readonly span: Span | undefined,
  ) {}

  spanContext() {
    return trace.setSpan(otelContext.active(), this.span as Span);
  }

  /** The error as the client sees it; its code is the call's. */
  fail(error: unknown): ConnectError {
    const mapped = toConnectError(error);
    this.end(mapped.code, mapped);
    return mapped;
  }

  end(code: number, error?: ConnectError): void {
    if (this.done) return;
    this.done = true;
    const port: RpcPort = this.context instanceof GrpcCallContext ? "grpc" : "http";
    this.record(port, code, (performance.now() - this.started) / 1000);
    const span = this.span;
    if (span) {
      span.setAttribute("rpc.grpc.status_code", code);
      if (SERVER_ERRORS.has(code)) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: error?.rawMessage ?? this.name });
      }
      span.end();
    }
  }
}

/** Codes that mean the server failed (OpenTelemetry's RPC conventions); the rest are the caller's. */
const SERVER_ERRORS = new Set<number>([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unimplemented,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
]);

function startSpan(name: string, request: unknown, context: HandlerContext): Span | undefined {
  if (!tracingOn()) return undefined;
  const header =
    context instanceof GrpcCallContext
      ? context.metadataValue("traceparent")
      : (context.requestHeader.get("traceparent") ?? undefined);
  const parent = parseTraceparent(header);
  const parentContext = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
  const [service, method] = name.split("/") as [string, string];
  const entityPath = (request as { entityPath?: unknown } | undefined)?.entityPath;
  return brokerTracer.startSpan(
    name,
    {
      kind: SpanKind.SERVER,
      attributes: {
        "rpc.system": "grpc",
        "rpc.service": service,
        "rpc.method": method,
        ...(typeof entityPath === "string" && entityPath !== ""
          ? { "messaging.system": "sessionbus", "messaging.destination.name": entityPath }
          : {}),
      },
    },
    parentContext,
  );
}

/** The names an AdminService change names (never keys): what the log line says changed. */
const NAME_FIELDS = ["entityPath", "topicName", "subscriptionName", "name", "ruleName"] as const;

function logChange(method: string, request: unknown): void {
  const fields: Record<string, string> = {};
  const source = request as Record<string, unknown>;
  for (const field of NAME_FIELDS) {
    const value = source[field];
    if (typeof value === "string" && value !== "") fields[field] = value.slice(0, 300);
  }
  const rule = (source.rule as { name?: unknown } | undefined)?.name;
  if (typeof rule === "string" && rule !== "") fields.rule = rule.slice(0, 300);
  const target = Object.values(fields).join(" ");
  // Under a key of their own: a request's `name` must not stand in for the log's.
  log.info({ method, change: fields }, `${method} ${target}`.trim());
}
