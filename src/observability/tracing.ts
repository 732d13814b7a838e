/**
 * Tracing through Deno's built-in OpenTelemetry support: with `OTEL_DENO=true`
 * Deno registers its tracer provider with npm:@opentelemetry/api and exports
 * spans over OTLP (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`).
 * Without it the API hands out no-op spans, so the hot path pays next to nothing.
 *
 * Spans: `smtp.session` (one per connection), `smtp.message` (DATA to spooled
 * and queued, with the message id), `delivery.attempt` (one per destination
 * domain per attempt, with message id, domain, attempt number, server, outcome).
 *
 * @example
 * ```ts
 * import { endSpan, startSpan } from "./tracing.ts"; // @ts-ignore deno#26900
 *
 * const span = startSpan("delivery.attempt", { "empath.message_id": "01JD3V6Y8Q3M0K2V9X7B5N4C1R" });
 * endSpan(span, undefined, { "empath.outcome": "delivered" }); // a no-op span unless OTEL_DENO=true
 * ```
 * @module
 */
import { type Attributes, type Span, SpanStatusCode, trace } from "@opentelemetry/api";
import { VERSION } from "../version.ts";

/** Empath's tracer. */
export const tracer = trace.getTracer("empath", VERSION);

/** Starts a span (no-op unless OTEL_DENO=true). */
export function startSpan(name: string, attributes: Attributes = {}): Span {
  return tracer.startSpan(name, { attributes });
}

/** Ends a span, marking it failed when an error is given. */
export function endSpan(span: Span, error?: unknown, attributes: Attributes = {}): void {
  span.setAttributes(attributes);
  if (error !== undefined && error !== null) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }
  span.end();
}

export type { Span };
