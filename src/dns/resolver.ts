/**
 * A caching DNS resolver over {@link queryDns}: answers are kept for their record TTL
 * bounded by `minTtlMs`/`maxTtlMs` (negative answers for their SOA minimum bounded by
 * `minTtlMs`/`negativeTtlMs`, RFC 2308), in an LRU of at most `maxEntries`; concurrent
 * lookups of one name share a query. Each answer records whether it came with the AD bit.
 *
 * NXDOMAIN and NODATA are permanent {@link DnsError}s and are cached; SERVFAIL,
 * REFUSED and timeouts are TEMPFAIL and are not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDnsResolver } from "./resolver.ts"; // @ts-ignore deno#26900
 *
 * // `query` stands in for the wire (default: queryDns to `server`).
 * const records = [{ type: "MX", name: "example.com", ttl: 300, data: { exchange: "mx.example.com", preference: 10 } }];
 * let asked = 0;
 * const query = () => Promise.resolve({ rcode: "NOERROR", ad: false, records, via: "udp" as const }).finally(() => asked++);
 * const dns = createDnsResolver({ server: { host: "127.0.0.1", port: 53 }, query });
 * const answer = await dns.lookup("example.com", "MX");
 * assert.deepEqual([answer.records, answer.ad, answer.cached], [records, false, false]);
 * assert.equal((await dns.lookup("Example.COM.", "MX")).cached, true); // within the TTL, from the cache
 * assert.equal(asked, 1);
 * dns.close();
 * ```
 * @module
 */
import { TtlLru } from "./cache.ts";
import { DnsError } from "./errors.ts";
import { type DnsRecord, type DnsRecordType, type DnsResponse, queryDns } from "./packet_client.ts";

/** A successful answer. */
export interface DnsAnswer {
  name: string;
  type: DnsRecordType;
  records: DnsRecord[];
  /** Validated by the resolver (AD bit). */
  ad: boolean;
  expiresAt: number;
  cached: boolean;
}

/** What the lookup hook is told (metrics, modules, logs). */
export interface DnsLookupEvent {
  name: string;
  type: string;
  durationMs: number;
  /** "ok" or the DnsError code. */
  result: string;
  cached: boolean;
  ad: boolean;
}

/** Resolver settings. */
export interface DnsResolverOptions {
  server?: { host: string; port: number };
  timeoutMs?: number;
  minTtlMs?: number;
  maxTtlMs?: number;
  negativeTtlMs?: number;
  maxEntries?: number;
  onLookup?: (event: DnsLookupEvent) => void;
  /** The query function (tests). */
  query?: typeof queryDns;
}

/** A cache entry as shown to operators. */
export interface DnsCacheEntry {
  name: string;
  type: string;
  value?: unknown;
  error?: string;
  ad: boolean;
  expiresAt: number;
}

/** The resolver. */
export interface DnsResolver {
  /** Records of one type; throws DnsError. */
  lookup(name: string, type: DnsRecordType): Promise<DnsAnswer>;
  /** Forgets one name (every type). */
  forget(name: string): void;
  entries(): DnsCacheEntry[];
  clear(): number;
  readonly size: number;
  close(): void;
}

type Stored = { answer?: DnsAnswer; error?: DnsError };

/** Lower-case, no trailing dot. */
export const normalizeName = (name: string): string => name.toLowerCase().replace(/\.$/, "");

function toError(name: string, type: string, r: DnsResponse): DnsError | undefined {
  if (r.rcode === "NXDOMAIN") return new DnsError(`${name} does not exist (NXDOMAIN)`, "NXDOMAIN", true, r.rcode, r.ad);
  if (r.rcode !== "NOERROR") {
    return new DnsError(`${type} lookup for ${name} failed: ${r.rcode}`, "TEMPFAIL", false, r.rcode);
  }
  if (r.records.length === 0) return new DnsError(`no ${type} records for ${name}`, "NODATA", true, r.rcode, r.ad);
  return undefined;
}

/** Creates the resolver. */
export function createDnsResolver(options: DnsResolverOptions = {}): DnsResolver {
  const maxTtl = options.maxTtlMs ?? 300_000;
  const minTtl = Math.min(options.minTtlMs ?? 10_000, maxTtl);
  const negativeTtl = options.negativeTtlMs ?? 60_000;
  const query = options.query ?? queryDns;
  const cache = new TtlLru<Stored>(options.maxEntries ?? 10_000);
  const inflight = new Map<string, Promise<DnsAnswer>>();
  const sweep = setInterval(() => cache.sweep(), Math.max(1000, Math.min(minTtl, 60_000)));
  Deno.unrefTimer(sweep as unknown as number);
  const clamp = (ms: number, max: number) => Math.max(Math.min(minTtl, max), Math.min(ms, max));

  async function lookup(rawName: string, type: DnsRecordType): Promise<DnsAnswer> {
    const name = normalizeName(rawName);
    const key = `${type} ${name}`;
    const hit = cache.get(key);
    if (hit) {
      const ad = hit.value.answer?.ad ?? hit.value.error?.ad ?? false;
      const result = hit.value.error ? hit.value.error.code : "ok";
      options.onLookup?.({ name, type, durationMs: 0, result, cached: true, ad });
      if (hit.value.error) throw hit.value.error;
      return { ...hit.value.answer!, cached: true };
    }
    const running = inflight.get(key);
    if (running) return await running;
    const t0 = performance.now();
    const work = (async () => {
      let response: DnsResponse;
      try {
        response = await query({ name, type }, { server: options.server, timeoutMs: options.timeoutMs });
      } catch (err) {
        const e = new DnsError(`${type} lookup for ${name} failed: ${(err as Error).message}`, "TEMPFAIL", false);
        options.onLookup?.({
          name,
          type,
          durationMs: performance.now() - t0,
          result: e.code,
          cached: false,
          ad: false,
        });
        throw e;
      }
      const durationMs = performance.now() - t0;
      const error = toError(name, type, response);
      if (error) {
        if (error.permanent) {
          const ttl = clamp((response.negativeTtl ?? negativeTtl / 1000) * 1000, negativeTtl);
          cache.set(key, { error }, Date.now() + ttl);
        }
        options.onLookup?.({ name, type, durationMs, result: error.code, cached: false, ad: response.ad });
        throw error;
      }
      const ttl = clamp(Math.min(...response.records.map((r) => r.ttl)) * 1000, maxTtl);
      const answer: DnsAnswer = {
        name,
        type,
        records: response.records,
        ad: response.ad,
        expiresAt: Date.now() + ttl,
        cached: false,
      };
      cache.set(key, { answer }, answer.expiresAt);
      options.onLookup?.({ name, type, durationMs, result: "ok", cached: false, ad: response.ad });
      return answer;
    })();
    inflight.set(key, work);
    try {
      return await work;
    } finally {
      inflight.delete(key);
    }
  }

  return {
    lookup,
    forget(name) {
      const n = normalizeName(name);
      for (const [key] of cache.entries()) if (key.slice(key.indexOf(" ") + 1) === n) cache.delete(key);
    },
    entries() {
      return cache.entries().map(([key, e]) => {
        const space = key.indexOf(" ");
        return {
          name: key.slice(space + 1),
          type: key.slice(0, space),
          value: e.value.answer?.records.map((r) => r.data),
          error: e.value.error?.message,
          ad: e.value.answer?.ad ?? e.value.error?.ad ?? false,
          expiresAt: e.expiresAt,
        };
      });
    },
    clear: () => cache.clear(),
    get size() {
      return cache.size;
    },
    close() {
      clearInterval(sweep);
    },
  };
}
