/**
 * Delivery: routing and DNS, transports (SMTP over a client and its pool), limits,
 * the scheduler, attempts, operator actions, and the engine that wires them.
 * @module
 */
export {
  type CacheEntry,
  createResolver,
  DnsError,
  type LookupType,
  type MxRecord,
  type Resolver,
  type TlsaAnswer,
  type TlsaRecord,
} from "./resolver.ts";
export { matchDomainPolicy, type Route, routeDomain, type RouteHost, type RoutePolicy } from "./router.ts";
export {
  type DeliveryResult,
  type DeliveryTarget,
  type OutboundMessage,
  SmtpClientError,
  SmtpSession,
} from "./smtp_client.ts";
export { type ConnectionPool, createConnectionPool, type PooledSession } from "./connection_pool.ts";
export { createWorkerPool } from "./worker_pool.ts";
export { type AcquireVerdict, DestinationLimits, type DestinationState, type SharedGate } from "./limits.ts";
export { retryDelay } from "./backoff.ts";
export { type Clock, systemClock } from "./clock.ts";
export {
  allRecipients,
  type DeliveryTransport,
  type TransportJob,
  type TransportRecipientResult,
  type TransportResult,
  type TransportSelector,
} from "./transport.ts";
export { createSmtpTransport, type SmtpTransportOptions } from "./smtp_transport.ts";
export { createLmtpTransport, type LmtpTransportOptions } from "./lmtp_transport.ts";
export { LmtpError, LmtpSession, type LmtpTarget, parseLmtpTarget } from "./lmtp_client.ts";
export { createHttpTransport, type HttpTransportOptions, parseRetryAfter, signWebhook } from "./http_transport.ts";
export { chooseTransport, createTransportSelector, type TransportChoice } from "./transport_select.ts";
export { isOwnListener, type ListenerAddress } from "./loop_check.ts";
export type { MessageFilter } from "./operator.ts";
export { createDeliveryEngine, type DeliveryDeps, type DeliveryEngine, type DeliveryEvents } from "./engine.ts";
export { setupTransportSecurity, type TransportSecuritySetup } from "./security_setup.ts";
export { type TransportSecurity } from "./transport_security.ts";
export { createTlsRptCounters, type TlsRptCounters, type TlsRptSummary } from "./tls_rpt.ts";
export { createStsCache, type StsCache } from "./mta_sts_cache.ts";
export { fetchStsPolicy, isNonPublicAddress, type StsPolicy } from "./mta_sts.ts";
export { checkDane, usableTlsa } from "./dane.ts";
export {
  createEventRecorder,
  type DeliveryEventDoc,
  type EventRecorder,
  type EventRecorderOptions,
} from "./event_recorder.ts";
export { createEventSender, type EventSender, type EventSenderOptions } from "./event_sender.ts";
export { createPriorityPicker, PRIORITY_WEIGHTS } from "./scheduler.ts";
export { DEDUP_REPLY } from "./attempt.ts";
