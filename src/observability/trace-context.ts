import {
  isSpanContextValid,
  ProxyTracerProvider,
  type SpanContext,
  TraceFlags,
  trace,
} from "@opentelemetry/api";

/**
 * W3C Trace Context (`traceparent`, version 00) and whether anyone records traces, for the
 * broker. The SDK (src/client/tracing.ts) has the same few lines of its own: it ships
 * without the broker.
 */

/** The tracer of the broker; spans go nowhere until the program registers a provider. */
export const brokerTracer = trace.getTracer("sessionbus-broker");

/**
 * Whether a tracer provider is registered (an OpenTelemetry SDK set up by the program):
 * without one, the broker makes no span and reads no header, so tracing costs nothing.
 */
export function tracingOn(): boolean {
  const provider = trace.getTracerProvider();
  return (
    !(provider instanceof ProxyTracerProvider) ||
    provider.getDelegateTracer("sessionbus-broker") !== undefined
  );
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The span context a `traceparent` value names, or undefined if it is not one. */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  if (value === undefined) return undefined;
  const match = TRACEPARENT.exec(value.trim());
  if (!match) return undefined;
  const context: SpanContext = {
    traceId: match[1] as string,
    spanId: match[2] as string,
    traceFlags: Number.parseInt(match[3] as string, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  return isSpanContextValid(context) ? context : undefined;
}
