/**
 * What the SMTP transport needs for DANE, MTA-STS, TLS-RPT and REQUIRETLS, and the
 * TLS-RPT bookkeeping of one failed or refused session.
 * @module
 */
import type { StsCache } from "./mta_sts_cache.ts";
import { type HostTls, tlsFailureResult } from "./tls_policy.ts";
import type { TlsRptCounters, TlsRptResult } from "./tls_rpt.ts";

/** Transport security services (daemon-built). */
export interface TransportSecurity {
  /** MTA-STS policies; none: MTA-STS off. */
  sts?: StsCache;
  /** The resolver validates DNSSEC (start-up probe): DANE is in effect. */
  dnssec: () => boolean;
  /** TLS-RPT counters; none: nothing counted. */
  rpt?: TlsRptCounters;
  /** Extra trusted CA certificates (PEM) for next hops (private PKI, tests). */
  ca?: string;
}

/** Counts one failed session for TLS-RPT. */
export function reportTlsFailure(
  security: TransportSecurity,
  domain: string,
  host: { name: string; ip: string },
  plan: HostTls,
  message: string,
  result?: TlsRptResult,
): void {
  security.rpt?.record({
    domain,
    policy: plan.report,
    success: false,
    result: result ?? plan.refuse?.result ?? tlsFailureResult(message, plan.report.type === "tlsa"),
    mxHost: host.name,
    receivingIp: host.ip,
    detail: message,
  });
}
