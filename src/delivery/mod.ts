/**
 * Delivery: routing and DNS, the SMTP client and its pool, limits, and the engine.
 * @module
 */
export { type CacheEntry, createResolver, DnsError, type MxRecord, type Resolver } from "./resolver.ts";
export { matchDomainPolicy, type Route, routeDomain, type RouteHost, type RoutePolicy } from "./router.ts";
export {
  type DeliveryResult,
  type DeliveryTarget,
  type OutboundMessage,
  SmtpClientError,
  SmtpSession,
} from "./smtp_client.ts";
export { type ConnectionPool, createConnectionPool } from "./connection_pool.ts";
export { DestinationLimits, type DestinationState } from "./limits.ts";
export { retryDelay } from "./backoff.ts";
export { createDeliveryEngine, type DeliveryEngine, type DeliveryEvents } from "./engine.ts";
