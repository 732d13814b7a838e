/**
 * DNS for delivery: MX, address and TLSA lookups over the caching resolver of
 * `src/dns/` (dns-packet, so answers carry their TTL and the AD bit, and NXDOMAIN is
 * told apart from NODATA), optionally against a configured name server.
 *
 * Answers are cached for their record TTL bounded by `minTtlMs` and `cacheTtlMs`
 * (negative answers by `negativeTtlMs`), in an LRU of `maxEntries`. Timeouts, SERVFAIL
 * and refusals are TEMPFAIL and not cached.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createResolver } from "./resolver.ts"; // @ts-ignore deno#26900
 *
 * const resolver = createResolver({ nameServer: { ipAddr: "127.0.0.1", port: 5353 }, cacheTtlMs: 300_000 });
 * // await resolver.mx("example.com") → [{ exchange: "mx.example.com", preference: 10 }], then cached
 * assert.equal(resolver.size, 0);
 * assert.deepEqual(resolver.cacheEntries(), []);
 * resolver.close(); // stops the cache sweep timer
 * ```
 * @module
 */
import {
  createDnsResolver,
  type DnsAnswer,
  DnsError,
  type DnsRecordType,
  type DnsResolver,
  normalizeName,
  queryDns,
} from "../dns/mod.ts";

export { DnsError };

/** One MX record. */
export interface MxRecord {
  exchange: string;
  preference: number;
}

/** One TLSA record (RFC 6698). */
export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  /** The association data. */
  data: Uint8Array;
}

/** TLSA records with their DNSSEC status. */
export interface TlsaAnswer {
  records: TlsaRecord[];
  /** The answer was validated (AD); only then may it be used (RFC 7672 2.2). */
  secure: boolean;
}

/** Resolver settings. */
export interface ResolverOptions {
  nameServer?: { ipAddr: string; port: number };
  timeoutMs?: number;
  /** Upper bound of how long an answer is kept (its TTL is used when shorter). */
  cacheTtlMs?: number;
  /** Lower bound of how long an answer is kept. */
  minTtlMs?: number;
  negativeTtlMs?: number;
  maxEntries?: number;
  onLookup?: (
    event: { name: string; type: string; durationMs: number; result: string; cached: boolean; ad: boolean },
  ) => void;
}

/** A cache entry as shown to operators. */
export interface CacheEntry {
  name: string;
  type: string;
  value?: unknown;
  error?: string;
  /** DNSSEC-validated answer (AD bit). */
  ad: boolean;
  expiresAt: number;
}

/** Record types {@link Resolver.records} answers (what the mail-authentication checks ask for). */
export type LookupType = "MX" | "A" | "AAAA" | "TXT" | "PTR" | "CNAME";

/** The resolver. */
export interface Resolver {
  mx(domain: string): Promise<MxRecord[]>;
  addresses(host: string): Promise<string[]>;
  /** `_port._tcp.host` TLSA; throws DnsError (NODATA/NXDOMAIN when there are none). Absent in test fakes: no DANE. */
  tlsa?(host: string, port: number): Promise<TlsaAnswer>;
  /** Any record type, with TTLs and the AD bit (empathctl dns lookup, MTA-STS, TLS-RPT). */
  lookup?(name: string, type: DnsRecordType): Promise<DnsAnswer>;
  /**
   * The same cache in `Deno.resolveDns` shapes (TXT: string[][], MX: {exchange, preference}) for the
   * SPF/DKIM/DMARC checks. Not found is a permanent DnsError, a timeout or SERVFAIL a temporary one.
   */
  records(name: string, type: LookupType): Promise<unknown[]>;
  cacheEntries(): CacheEntry[];
  clearCache(): number;
  refresh(domain: string): Promise<void>;
  readonly size: number;
  /**
   * Asks the resolver itself (never the cache) for the root's NS records; any answer, even
   * "no records", proves it works. Fails with a TEMPFAIL DnsError when it does not answer.
   */
  probe(): Promise<void>;
  close(): void;
}

/** Creates a resolver with its cache. */
export function createResolver(options: ResolverOptions = {}): Resolver {
  const dns: DnsResolver = createDnsResolver({
    server: options.nameServer ? { host: options.nameServer.ipAddr, port: options.nameServer.port } : undefined,
    timeoutMs: options.timeoutMs ?? 5000,
    maxTtlMs: options.cacheTtlMs ?? 300_000,
    minTtlMs: options.minTtlMs,
    negativeTtlMs: options.negativeTtlMs ?? 60_000,
    maxEntries: options.maxEntries ?? 10_000,
    onLookup: options.onLookup,
  });

  const mx = async (domain: string) => {
    const answer = await dns.lookup(domain, "MX");
    return answer.records.map((r) => {
      const d = r.data as { exchange: string; preference: number };
      return { exchange: normalizeName(d.exchange), preference: d.preference };
    });
  };

  return {
    async probe() {
      const server = options.nameServer
        ? `${options.nameServer.ipAddr}:${options.nameServer.port}`
        : "the system resolver";
      try {
        // Straight to the server, past the cache: any answer (NXDOMAIN included) proves it works.
        await queryDns({ name: ".", type: "SOA" }, {
          server: options.nameServer ? { host: options.nameServer.ipAddr, port: options.nameServer.port } : undefined,
          timeoutMs: options.timeoutMs ?? 5000,
        });
      } catch (err) {
        throw new DnsError(`DNS resolver ${server} did not answer: ${(err as Error).message}`, "TEMPFAIL", false);
      }
    },
    mx,
    async addresses(host) {
      const name = normalizeName(host);
      const results = await Promise.allSettled([dns.lookup(name, "A"), dns.lookup(name, "AAAA")]);
      const out = results.flatMap((r) => r.status === "fulfilled" ? r.value.records.map((x) => String(x.data)) : []);
      if (out.length > 0) return out;
      const temp = results.find((r) => r.status === "rejected" && !(r.reason as DnsError).permanent);
      if (temp) throw (temp as PromiseRejectedResult).reason;
      const nx = results.find((r) => r.status === "rejected" && (r.reason as DnsError).code === "NXDOMAIN");
      if (nx) throw (nx as PromiseRejectedResult).reason;
      throw new DnsError(`no A or AAAA records for ${name}`, "NODATA", true);
    },
    async tlsa(host, port) {
      const answer = await dns.lookup(`_${port}._tcp.${normalizeName(host)}`, "TLSA");
      const records = answer.records.map((r) => {
        const d = r.data as { usage: number; selector: number; matchingType: number; certificate: Uint8Array };
        return { usage: d.usage, selector: d.selector, matchingType: d.matchingType, data: d.certificate };
      });
      return { records, secure: answer.ad };
    },
    lookup: (name, type) => dns.lookup(name, type),
    async records(name, type) {
      const answer = await dns.lookup(normalizeName(name), type);
      return answer.records.filter((r) => r.type === type).map((r) => resolveDnsShape(type, r.data));
    },
    cacheEntries() {
      return dns.entries().map((e) => ({
        ...e,
        value: e.type === "MX"
          ? (e.value as { exchange: string; preference: number }[] | undefined)?.map((m) => ({
            exchange: normalizeName(m.exchange),
            preference: m.preference,
          }))
          : e.value,
      }));
    },
    clearCache: () => dns.clear(),
    async refresh(domain) {
      dns.forget(domain);
      await mx(domain).catch(() => {});
    },
    get size() {
      return dns.size;
    },
    close() {
      dns.close();
    },
  };
}

const textDecoder = new TextDecoder();

/** A dns-packet record's data in the shape `Deno.resolveDns` gives for that type. */
function resolveDnsShape(type: LookupType, data: unknown): unknown {
  if (type === "TXT") {
    const parts = Array.isArray(data) ? data : [data];
    return parts.map((p) => typeof p === "string" ? p : textDecoder.decode(p as Uint8Array));
  }
  if (type === "MX") {
    const d = data as { exchange: string; preference: number };
    return { exchange: normalizeName(d.exchange), preference: d.preference };
  }
  return typeof data === "string" ? normalizeName(data) : data;
}
