/**
 * Prometheus metrics (npm:prom-client), one registry per daemon. Gauges that
 * describe state (queue, DNS cache, breakers, spool) are computed at scrape time.
 * Domain labels are bounded: the first `maxDomains` domains seen keep their name,
 * the rest are reported as "other".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMetrics } from "./metrics.ts"; // @ts-ignore deno#26900
 *
 * const metrics = createMetrics({ maxDomains: 20 });
 * metrics.smtpConnections.inc({ listener: "mx" });
 * const text = await metrics.registry.metrics(); // Prometheus text format
 * assert.match(text, /listener="mx"/);
 * ```
 * @module
 */
import client from "prom-client";
import { registerProcessMetrics } from "./process_metrics.ts";

/** All of Empath's metrics. */
export interface Metrics {
  registry: client.Registry;
  smtpConnections: client.Counter<"listener">;
  smtpActive: client.Gauge<"listener">;
  messagesReceived: client.Counter<"listener">;
  messageSize: client.Histogram<string>;
  smtpRejections: client.Counter<"code">;
  /** Failed SMTP AUTH: `credentials` (535) or `locked_out` (454, too many failures from the address). */
  authFailures: client.Counter<"reason">;
  deliveryAttempts: client.Counter<"result">;
  /** Recipient outcomes per destination domain (bounded label): deferral and bounce rates per domain. */
  deliveryOutcomes: client.Counter<"domain" | "result">;
  deliveryDuration: client.Histogram<"domain">;
  dnsLookupDuration: client.Histogram<"type" | "result">;
  auditDropped: client.Counter<string>;
  /** DSNs for mail from outside clients (possible backscatter): `decision` sent/suppressed, and why. */
  backscatterCandidates: client.Counter<"decision" | "reason">;
  /** Recipient validation at RCPT for local domains: `result` known/unknown/tempfail, by `source`. */
  recipientChecks: client.Counter<"result" | "source">;
  /**
   * TLS failures. `direction="outbound"`: `reason` is the RFC 8460 result type (handshake and certificate
   * failures, DANE/MTA-STS refusals, policy fetch errors); `direction="inbound"`: a STARTTLS handshake that
   * failed (`handshake`) or did not finish within smtp.timeouts.handshake (`timeout`).
   */
  tlsFailures: client.Counter<"direction" | "reason">;
  /** Maps a domain to its bounded label. */
  domainLabel(domain: string): string;
  /** Registers scrape-time gauges. */
  gauge(
    name: string,
    help: string,
    labelNames: string[],
    collect: (set: (labels: Record<string, string>, value: number) => void) => Promise<void> | void,
  ): void;
}

/** Creates the registry and the metrics. */
export function createMetrics(options: { maxDomains?: number } = {}): Metrics {
  const registry = new client.Registry();
  const maxDomains = options.maxDomains ?? 20;
  const domains = new Set<string>();
  try {
    // Process metrics (CPU, heap, event-loop lag…) as empath_process_* and empath_nodejs_*.
    client.collectDefaultMetrics({ register: registry, prefix: "empath_" });
  } catch {
    // The runtime lacks something prom-client needs: the /proc based ones below still work.
  }
  // prom-client's memory and descriptor gauges read 0 under Deno: these read /proc instead.
  registerProcessMetrics(registry, "empath_");
  const metrics: Metrics = {
    registry,
    smtpConnections: new client.Counter({
      name: "empath_smtp_connections_total",
      help: "SMTP connections accepted",
      labelNames: ["listener"],
      registers: [registry],
    }),
    smtpActive: new client.Gauge({
      name: "empath_smtp_active_connections",
      help: "SMTP sessions open now",
      labelNames: ["listener"],
      registers: [registry],
    }),
    messagesReceived: new client.Counter({
      name: "empath_messages_received_total",
      help: "Messages accepted (250) and queued",
      labelNames: ["listener"],
      registers: [registry],
    }),
    messageSize: new client.Histogram({
      name: "empath_message_size_bytes",
      help: "Size of accepted messages",
      buckets: [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864],
      registers: [registry],
    }),
    backscatterCandidates: new client.Counter({
      name: "empath_backscatter_candidates_total",
      help: "DSNs for mail from outside clients (possible backscatter), by decision (sent, suppressed) and reason",
      labelNames: ["decision", "reason"],
      registers: [registry],
    }),
    recipientChecks: new client.Counter({
      name: "empath_recipient_checks_total",
      help: "Recipient validation at RCPT for local domains, by result (known, unknown, tempfail) and source",
      labelNames: ["result", "source"],
      registers: [registry],
    }),
    tlsFailures: new client.Counter({
      name: "empath_tls_failures_total",
      help: "TLS failures: outbound by RFC 8460 result type, inbound STARTTLS handshakes that failed or timed out",
      labelNames: ["direction", "reason"],
      registers: [registry],
    }),
    smtpRejections: new client.Counter({
      name: "empath_smtp_rejections_total",
      help: "SMTP error replies sent, by reply code",
      labelNames: ["code"],
      registers: [registry],
    }),
    authFailures: new client.Counter({
      name: "empath_auth_failures_total",
      help:
        "Failed SMTP AUTH attempts: wrong credentials (535) or refused while the client address is locked out (454)",
      labelNames: ["reason"],
      registers: [registry],
    }),
    deliveryAttempts: new client.Counter({
      name: "empath_delivery_attempts_total",
      help: "Delivery outcomes per recipient attempt",
      labelNames: ["result"],
      registers: [registry],
    }),
    deliveryOutcomes: new client.Counter({
      name: "empath_delivery_outcomes_total",
      help: "Recipient delivery outcomes (delivered, deferred, failed) per destination domain",
      labelNames: ["domain", "result"],
      registers: [registry],
    }),
    deliveryDuration: new client.Histogram({
      name: "empath_delivery_duration_seconds",
      help: "Duration of delivery attempts (one per domain group)",
      labelNames: ["domain"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    dnsLookupDuration: new client.Histogram({
      name: "empath_dns_lookup_duration_seconds",
      help: "DNS lookups that went to a name server",
      labelNames: ["type", "result"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    auditDropped: new client.Counter({
      name: "empath_audit_dropped_lines_total",
      help: "Audit log lines that could not be written (full disk, unwritable file, slow target)",
      registers: [registry],
    }),
    domainLabel(domain) {
      if (domains.has(domain)) return domain;
      if (domains.size < maxDomains) {
        domains.add(domain);
        return domain;
      }
      return "other";
    },
    gauge(name, help, labelNames, collect) {
      new client.Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          this.reset();
          await collect((labels, value) => this.set(labels, value));
        },
      });
    },
  };
  return metrics;
}
