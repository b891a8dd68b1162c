/**
 * OpenTelemetry traces of the SDK, through @opentelemetry/api only: the application
 * registers a tracer provider (an OpenTelemetry SDK, configured by the standard OTEL_*
 * variables or in code) and the SDK's spans go there; with none registered, no span is
 * made, no header sent and no property added, so tracing costs nothing.
 *
 * A message carries the W3C `traceparent` of the span that sent it in its application
 * property `Diagnostic-Id`, as the Service Bus SDKs do, so the span of whoever receives or
 * processes it links to its producer's, across processes and languages.
 */
import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  type Link,
  ProxyTracerProvider,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from "@opentelemetry/api";

/** The application property a sent message carries its producer's `traceparent` in. */
export const DIAGNOSTIC_ID_PROPERTY = "Diagnostic-Id";

const TRACER_NAME = "sessionbus-client";
const tracer = trace.getTracer(TRACER_NAME);

/** Whether the application registered a tracer provider. */
export function tracingOn(): boolean {
  const provider = trace.getTracerProvider();
  return (
    !(provider instanceof ProxyTracerProvider) ||
    provider.getDelegateTracer(TRACER_NAME) !== undefined
  );
}

/** The W3C `traceparent` of a span context. */
export function toTraceparent(span: SpanContext): string {
  const flags = (span.traceFlags & TraceFlags.SAMPLED).toString(16).padStart(2, "0");
  return `00-${span.traceId}-${span.spanId}-${flags}`;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The span context a `traceparent` names, or undefined if it is not a valid one. */
export function fromTraceparent(value: unknown): SpanContext | undefined {
  if (typeof value !== "string") return undefined;
  const match = TRACEPARENT.exec(value.trim());
  if (!match) return undefined;
  const span: SpanContext = {
    traceId: match[1] as string,
    spanId: match[2] as string,
    traceFlags: Number.parseInt(match[3] as string, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  return isSpanContextValid(span) ? span : undefined;
}

/** A link to the span that sent the message, if it carries one. */
export function producerLink(applicationProperties: Record<string, unknown>): Link | undefined {
  const producer = fromTraceparent(applicationProperties[DIAGNOSTIC_ID_PROPERTY]);
  return producer && { context: producer };
}

/** What an operation of the SDK says about itself in its span. */
export interface SpanSpec {
  /** `messaging.operation.type`: send, receive, process, settle… */
  operation: string;
  /** The entity path. */
  destination: string;
  kind: SpanKind;
  /** The name's first word when it is not the operation, e.g. "complete". */
  name?: string;
  attributes?: Attributes;
  links?: Link[];
  /** When the operation began. @default now */
  startTime?: number;
}

/**
 * Starts a span, child of the active context (or `parent`), named "<name> <entity>" as
 * OpenTelemetry's messaging conventions have it; undefined when tracing is off.
 */
export function startSpan(spec: SpanSpec, parent: Context = context.active()): Span | undefined {
  if (!tracingOn()) return undefined;
  return tracer.startSpan(
    `${spec.name ?? spec.operation} ${spec.destination}`,
    {
      kind: spec.kind,
      ...(spec.startTime === undefined ? {} : { startTime: spec.startTime }),
      ...(spec.links === undefined ? {} : { links: spec.links }),
      attributes: {
        "messaging.system": "sessionbus",
        "messaging.operation.type": spec.operation,
        "messaging.operation.name": spec.name ?? spec.operation,
        "messaging.destination.name": spec.destination,
        ...spec.attributes,
      },
    },
    parent,
  );
}

/** Marks the span's operation failed. */
export function failSpan(span: Span | undefined, error: unknown): void {
  if (!span) return;
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}

/** Ends a span, with an error status when the operation failed. */
export function endSpan(span: Span | undefined, error?: unknown): void {
  if (!span) return;
  if (error !== undefined) failSpan(span, error);
  span.end();
}

/** Runs `work` with `span` active (for an application that set up a context manager). */
export function runInSpan<T>(span: Span | undefined, work: () => T): T {
  return span ? context.with(trace.setSpan(context.active(), span), work) : work();
}

/**
 * Runs `work` in a span (active while it runs, for an application that set up a context
 * manager), ending the span with the outcome. Without tracing, just runs `work`.
 */
export async function inSpan<T>(
  spec: SpanSpec,
  work: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  const span = startSpan(spec);
  if (!span) return work(undefined);
  try {
    const result = await runInSpan(span, () => work(span));
    endSpan(span);
    return result;
  } catch (error) {
    endSpan(span, error);
    throw error;
  }
}

/** The `traceparent` header a call in `span` sends, so the broker's span is its child. */
export function traceHeaders(span: Span | undefined): Record<string, string> | undefined {
  return span ? { traceparent: toTraceparent(span.spanContext()) } : undefined;
}

export { SpanKind };
