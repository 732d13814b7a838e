/**
 * Which TLS each candidate host of a delivery gets: DANE (RFC 7672) where the MX host
 * has usable TLSA records in a signed zone, else the domain's MTA-STS policy (RFC 8461),
 * else the configured policy. DANE takes precedence over MTA-STS (RFC 8461 2).
 *
 * Configured `tls` per domain (or `[delivery] tls`):
 * - `none`: no TLS, no DANE, no MTA-STS;
 * - `opportunistic`, `required`, `dane`: DANE when the resolver validates, then MTA-STS,
 *   then the configured behaviour (`dane` behaves as `opportunistic` for hosts without DANE);
 * - `dane-only`: hosts without usable, validated TLSA records are not used (the mail waits).
 *
 * A TLSA lookup that fails (SERVFAIL: bogus data) for a host whose address answer was
 * validated is a failure on a secure path: that host is not used.
 * @module
 */
import { checkDane, usableTlsa } from "./dane.ts";
import type { StsCache } from "./mta_sts_cache.ts";
import { stsAllowsMx, type StsPolicy } from "./mta_sts.ts";
import type { Resolver, TlsaRecord } from "./resolver.ts";
import type { TlsRptPolicy, TlsRptResult } from "./tls_rpt.ts";

/** The configured TLS values. */
export type TlsMode = "none" | "opportunistic" | "required" | "dane" | "dane-only";

/** How one host is to be contacted. */
export interface HostTls {
  tls: "none" | "opportunistic" | "required";
  verifyCertificates: boolean;
  /** Set for DANE: checks the peer chain; returns why it failed, or undefined. */
  verifyPeer?: (chain: Uint8Array[]) => string | undefined;
  /** What verified the host, if anything (REQUIRETLS needs one). */
  verifiedBy?: "dane" | "sts";
  /** The policy for TLS-RPT. */
  report: TlsRptPolicy;
  /** STS testing mode: failures are reported, delivery goes on as configured. */
  testing?: boolean;
  /** The host must not be used (and why). */
  refuse?: { reason: string; result: TlsRptResult };
  /** STS testing mode: what enforce would have refused for; reported, and the host is used anyway (RFC 8461 5). */
  testFailure?: { reason: string; result: TlsRptResult };
}

/** What the planner needs. */
export interface TlsPlanContext {
  resolver: Resolver;
  sts?: StsCache;
  /** The resolver validates DNSSEC (start-up probe). */
  dnssec: boolean;
}

/** The domain-level part (looked up once per delivery). */
export interface DomainTls {
  mode: TlsMode;
  sts?: StsPolicy;
  /** The STS policy could not be fetched (reported as sts-policy-fetch-error). */
  stsError?: string;
}

/** Looks up the domain's MTA-STS policy when the mode allows it. */
export async function domainTls(domain: string, mode: TlsMode, ctx: TlsPlanContext): Promise<DomainTls> {
  if (mode === "none" || !ctx.sts) return { mode };
  const { policy, error } = await ctx.sts.policyFor(domain);
  return { mode, sts: policy?.mode === "none" ? undefined : policy, stsError: error?.message };
}

const presentTlsa = (r: TlsaRecord) =>
  `${r.usage} ${r.selector} ${r.matchingType} ${[...r.data].map((b) => b.toString(16).padStart(2, "0")).join("")}`;

function stsReport(p: StsPolicy): TlsRptPolicy {
  return {
    type: "sts",
    strings: ["version: STSv1", `mode: ${p.mode}`, ...p.mx.map((m) => `mx: ${m}`), `max_age: ${p.maxAge}`],
    mxHosts: p.mx,
  };
}

async function dane(
  host: { name: string; port: number },
  domain: string,
  ctx: TlsPlanContext,
): Promise<HostTls | undefined> {
  if (!ctx.dnssec || !ctx.resolver.tlsa || /^[\d.]+$|:/.test(host.name)) return undefined;
  let answer;
  try {
    answer = await ctx.resolver.tlsa(host.name, host.port);
  } catch (err) {
    const e = err as { permanent?: boolean; message: string };
    if (e.permanent) return undefined; // no TLSA (denial of existence): no DANE
    const secure = await ctx.resolver.lookup?.(host.name, "A").then((a) => a.ad, () => false);
    if (!secure) return undefined;
    return {
      tls: "required",
      verifyCertificates: false,
      report: { type: "tlsa" },
      refuse: {
        reason: `TLSA lookup for ${host.name} failed on a secure path: ${e.message}`,
        result: "dnssec-invalid",
      },
    };
  }
  if (!answer.secure) return undefined;
  const records = usableTlsa(answer.records);
  const report: TlsRptPolicy = { type: "tlsa", strings: answer.records.map(presentTlsa) };
  if (records.length === 0) return { tls: "required", verifyCertificates: false, report }; // RFC 7672 2.2
  return {
    tls: "required",
    verifyCertificates: false,
    verifiedBy: "dane",
    report,
    verifyPeer: (chain) => {
      const result = checkDane(records, chain, [host.name, domain]);
      return result.ok ? undefined : result.detail;
    },
  };
}

/** The TLS for one candidate host. `base` is the configured behaviour (tls + certificate check). */
export async function hostTls(
  host: { name: string; port: number },
  domain: string,
  d: DomainTls,
  base: { tls: "none" | "opportunistic" | "required"; verifyCertificates: boolean },
  ctx: TlsPlanContext,
): Promise<HostTls> {
  const none: TlsRptPolicy = { type: "no-policy-found" };
  if (d.mode === "none") return { ...base, tls: "none", report: none };
  const viaDane = await dane(host, domain, ctx);
  if (viaDane) return viaDane;
  if (d.mode === "dane-only") {
    const why = ctx.dnssec ? `${host.name} has no usable validated TLSA records` : "the resolver does not validate";
    return {
      ...base,
      report: { type: "tlsa" },
      refuse: { reason: `tls = dane-only: ${why}`, result: "dane-required" },
    };
  }
  if (d.sts) {
    const report = stsReport(d.sts);
    if (d.sts.mode === "enforce") {
      if (!stsAllowsMx(host.name, d.sts)) {
        return {
          ...base,
          report,
          refuse: {
            reason: `MX ${host.name} is not in ${domain}'s MTA-STS policy`,
            result: "certificate-host-mismatch",
          },
        };
      }
      return { tls: "required", verifyCertificates: true, verifiedBy: "sts", report };
    }
    const testFailure = stsAllowsMx(host.name, d.sts) ? undefined : {
      reason: `MX ${host.name} is not in ${domain}'s MTA-STS policy (mode testing: delivering anyway)`,
      result: "certificate-host-mismatch" as const,
    };
    return { ...base, report, testing: true, testFailure };
  }
  return { ...base, report: none };
}

/** The RFC 8460 result type for a TLS failure message. */
export function tlsFailureResult(message: string, hasTlsa: boolean): TlsRptResult {
  if (/did not offer STARTTLS|STARTTLS/i.test(message) && !/certificate/i.test(message)) {
    return "starttls-not-supported";
  }
  if (hasTlsa) return "validation-failure";
  if (/expired/i.test(message)) return "certificate-expired";
  if (/hostname|altname|NotValidForName/i.test(message)) return "certificate-host-mismatch";
  if (/certificate|self[- ]signed|UnknownIssuer|unable to verify/i.test(message)) return "certificate-not-trusted";
  return "validation-failure";
}
