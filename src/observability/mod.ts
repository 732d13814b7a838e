/**
 * Observability: logging, metrics and the operator's HTTP endpoints.
 * @module
 */
export { closeLogging, logger, logLevel, type LogSettings, setLogLevel, setupLogging } from "./log.ts";
export { createMetrics, type Metrics } from "./metrics.ts";
export { type HttpApp, type HttpServer, type ReadinessCheck, startHttp } from "./http.ts";
export { type AuditLog, type AuditOptions, createAuditLog } from "./audit.ts";
export { endSpan, type Span, startSpan, tracer } from "./tracing.ts";
export { createSmtpTrace, type SmtpTrace, type TraceEvent, type TraceFilter, traceLines } from "./smtp_trace.ts";
