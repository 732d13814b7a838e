/**
 * `empathctl dns lookup` (records, TTLs and the AD bit) and `empathctl tls report`
 * (today's TLS-RPT counters).
 * @module
 */
import type { DnsLookupResult, TlsReportResult } from "../control/mod.ts";
import { table, until } from "./ctl_format.ts";
import { at, type CommandSpec, spec } from "./ctl_spec.ts";

/** `dns lookup`. */
export function lookupText(r: DnsLookupResult): string {
  const head = `${r.name} ${r.type}: ${r.ad ? "AD (DNSSEC validated)" : "no AD (not validated)"}` +
    (r.cached && r.expiresAt ? `, from the cache, expires ${until(r.expiresAt)}` : "");
  if (r.error) return `${head}\n${r.code ?? "ERROR"}: ${r.error}`;
  return `${head}\n` + table(["NAME", "TTL", "TYPE", "VALUE"], r.records.map((x) => [x.name, x.ttl, x.type, x.value]));
}

/** `tls report`. */
export function tlsReportText(r: TlsReportResult): string {
  if (!r.enabled) return "TLS-RPT is off ([delivery.tls_rpt] enabled = false)";
  if (r.rows.length === 0) return `no TLS sessions counted on ${r.day} (UTC)`;
  const rows = r.rows.map((x) => [
    x.domain,
    x.policy.type,
    x.successful,
    x.failed,
    x.failures.map((f) => `${f.result}${f.mxHost ? `@${f.mxHost}` : ""}×${f.count}`).join(", "),
  ]);
  return `TLS-RPT counters for ${r.day} (UTC)\n` + table(["DOMAIN", "POLICY", "OK", "FAILED", "FAILURES"], rows);
}

/** The `dns lookup` command. */
export const DNS_LOOKUP: CommandSpec = spec("dns.lookup", {
  usage: "dns lookup NAME [--type A|AAAA|MX|TXT|TLSA|CNAME|SOA]",
  summary: "records with their TTLs and whether the resolver validated them (AD bit)",
  positionals: ["name"],
  options: ["type"],
  args: (p, o) => ({ name: at(p, 0), type: o.type }),
  text: lookupText,
});

/** The `tls` group. */
export const TLS_COMMANDS: Record<string, CommandSpec> = {
  report: spec("tls.report", {
    usage: "tls report [--domain D]",
    summary: "today's TLS-RPT counters: sessions per domain and policy, failures by result type",
    options: ["domain"],
    args: (_p, o) => ({ domain: o.domain }),
    text: tlsReportText,
  }),
};
