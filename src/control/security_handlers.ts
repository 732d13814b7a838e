/**
 * Transport-security commands: `dns.lookup` (records with TTLs and the AD bit, through
 * the daemon's resolver and its cache) and `tls.report` (today's TLS-RPT counters).
 * @module
 */
import { Buffer } from "node:buffer";
import type { ArgsOf } from "./api.ts";
import type { DnsLookupRecord, DnsLookupResult } from "./api_results.ts";
import type { ControlContext, GroupHandlers } from "./context.ts";
import { ControlError } from "./protocol.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** One record's data in presentation form (TXT strings quoted, TLSA in hex). */
export function presentRecord(type: string, data: unknown): string {
  if (typeof data === "string") return data;
  const d = data as Record<string, unknown>;
  switch (type) {
    case "MX":
      return `${d.preference} ${d.exchange}`;
    case "TXT":
      return (data as Uint8Array[]).map((b) => JSON.stringify(new TextDecoder().decode(b))).join(" ");
    case "TLSA":
      return `${d.usage} ${d.selector} ${d.matchingType} ${hex(d.certificate as Uint8Array)}`;
    case "SOA":
      return `${d.mname} ${d.rname} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
    default:
      return JSON.stringify(data);
  }
}

/** `dns.lookup`. */
export async function dnsLookup({ name, type }: ArgsOf<"dns.lookup">, ctx: ControlContext): Promise<DnsLookupResult> {
  if (!ctx.resolver.lookup) throw new ControlError("this daemon's resolver has no record lookups", "FAILED");
  try {
    const a = await ctx.resolver.lookup(name, type);
    const records: DnsLookupRecord[] = a.records.map((r) => ({
      name: r.name,
      type: r.type,
      ttl: r.ttl,
      value: presentRecord(r.type, r.data),
    }));
    return { name: a.name, type, ad: a.ad, cached: a.cached, expiresAt: a.expiresAt, records };
  } catch (err) {
    const e = err as { message: string; code?: string; ad?: boolean };
    return { name, type, ad: e.ad ?? false, cached: false, records: [], error: e.message, code: e.code };
  }
}

/** `tls.*`. */
export const securityHandlers: GroupHandlers<"tls"> = {
  "tls.report": ({ domain }, ctx) => {
    const rpt = ctx.tlsRpt;
    if (!rpt) return Promise.resolve({ day: new Date().toISOString().slice(0, 10), enabled: false, rows: [] });
    return Promise.resolve({ day: rpt.today(), enabled: true, rows: rpt.summary({ domain }) });
  },
};
