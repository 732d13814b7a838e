/**
 * The scrape-time gauges: queue by status and oldest age, DNS cache, outbound connections,
 * open circuit breakers and spool bytes, each read from its owner when Prometheus scrapes.
 *
 * @module
 */
import type { ConnectionPool, DeliveryEngine, Resolver } from "../delivery/mod.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { QueueStore } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";

/** What the gauges read. */
export interface GaugeSources {
  store: QueueStore;
  spool: Spool;
  resolver: Resolver;
  pool: ConnectionPool;
  delivery: DeliveryEngine;
}

/** Registers the gauges on `metrics`. */
export function registerGauges(metrics: Metrics, sources: GaugeSources): void {
  const { store, spool, resolver, pool, delivery } = sources;
  metrics.gauge("empath_queue_messages", "Messages in the queue by status", ["status"], async (set) => {
    for (const [status, n] of Object.entries(await store.counts())) set({ status }, n);
  });
  metrics.gauge("empath_queue_oldest_age_seconds", "Age of the oldest queued message", [], async (set) => {
    for await (const r of store.list({ limit: 1 })) return set({}, (Date.now() - r.receivedAt) / 1000);
    set({}, 0);
  });
  metrics.gauge("empath_dns_cache_entries", "Entries in the DNS cache", [], (set) => set({}, resolver.size));
  metrics.gauge("empath_delivery_active_connections", "Outbound SMTP connections in use", [], (set) => {
    set({}, pool.stats().reduce((n, s) => n + s.active, 0));
  });
  metrics.gauge("empath_circuit_breaker_open", "1 while a destination's circuit breaker is open", ["domain"], (set) => {
    for (const s of delivery.limits.all()) set({ domain: metrics.domainLabel(s.domain) }, s.circuit === "open" ? 1 : 0);
  });
  metrics.gauge(
    "empath_spool_bytes",
    "Bytes of message data in the spool",
    [],
    async (set) => set({}, await spool.usage()),
  );
}
