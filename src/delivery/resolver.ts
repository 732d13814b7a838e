/**
 * DNS for delivery: MX and address lookups through `Deno.resolveDns` (optionally
 * against a configured name server), with a cache for positive and negative
 * answers, active eviction of expired entries, and shared in-flight queries.
 *
 * Deno.resolveDns reports NXDOMAIN and "no records of this type" alike as
 * `Deno.errors.NotFound`; both are permanent answers for the name and type asked.
 * Timeouts (our AbortSignal), SERVFAIL and refusals arrive as other errors and are
 * temporary.
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

/** One MX record. */
export interface MxRecord {
  exchange: string;
  preference: number;
}

/** DNS failures; `permanent` says whether retrying can help. */
export class DnsError extends Error {
  constructor(
    message: string,
    readonly code: "NXDOMAIN" | "NODATA" | "TEMPFAIL" | "NULL_MX",
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = "DnsError";
  }
}

/** Resolver settings. */
export interface ResolverOptions {
  nameServer?: { ipAddr: string; port: number };
  timeoutMs?: number;
  cacheTtlMs?: number;
  negativeTtlMs?: number;
  maxEntries?: number;
  onLookup?: (event: { name: string; type: string; durationMs: number; result: string; cached: boolean }) => void;
}

/** A cache entry as shown to operators. */
export interface CacheEntry {
  name: string;
  type: "MX" | "A" | "AAAA";
  value?: unknown;
  error?: string;
  expiresAt: number;
}

/** The resolver. */
export interface Resolver {
  mx(domain: string): Promise<MxRecord[]>;
  addresses(host: string): Promise<string[]>;
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

type Stored = { value?: unknown; error?: DnsError; expiresAt: number };

/** Creates a resolver with its cache. */
export function createResolver(options: ResolverOptions = {}): Resolver {
  const timeoutMs = options.timeoutMs ?? 5000;
  const ttl = options.cacheTtlMs ?? 300_000;
  const negativeTtl = options.negativeTtlMs ?? 60_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const cache = new Map<string, Stored>();
  const inflight = new Map<string, Promise<unknown>>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [key, entry] of cache) if (entry.expiresAt <= now) cache.delete(key);
  }, Math.max(1000, Math.min(ttl, negativeTtl)));
  Deno.unrefTimer(sweep as unknown as number);

  async function query<T>(name: string, type: "MX" | "A" | "AAAA"): Promise<T> {
    const key = `${type} ${name}`;
    const hit = cache.get(key);
    if (hit && hit.expiresAt > Date.now()) {
      options.onLookup?.({ name, type, durationMs: 0, result: hit.error ? hit.error.code : "ok", cached: true });
      if (hit.error) throw hit.error;
      return hit.value as T;
    }
    const running = inflight.get(key);
    if (running) return await (running as Promise<T>);
    const t0 = performance.now();
    const work = (async () => {
      try {
        const value = await Deno.resolveDns(name, type as "MX", {
          nameServer: options.nameServer,
          signal: AbortSignal.timeout(timeoutMs),
        });
        store(key, { value, expiresAt: Date.now() + ttl });
        options.onLookup?.({ name, type, durationMs: performance.now() - t0, result: "ok", cached: false });
        return value;
      } catch (err) {
        const dnsErr = err instanceof Deno.errors.NotFound
          ? new DnsError(`no ${type} records for ${name}`, "NODATA", true)
          : new DnsError(`${type} lookup for ${name} failed: ${(err as Error).message}`, "TEMPFAIL", false);
        if (dnsErr.permanent) store(key, { error: dnsErr, expiresAt: Date.now() + negativeTtl });
        options.onLookup?.({ name, type, durationMs: performance.now() - t0, result: dnsErr.code, cached: false });
        throw dnsErr;
      } finally {
        inflight.delete(key);
      }
    })();
    inflight.set(key, work);
    return await (work as Promise<T>);
  }

  function store(key: string, entry: Stored) {
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, entry);
  }

  const normalize = (name: string) => name.toLowerCase().replace(/\.$/, "");

  return {
    async probe() {
      const server = options.nameServer
        ? `${options.nameServer.ipAddr}:${options.nameServer.port}`
        : "the system resolver";
      try {
        await Deno.resolveDns(".", "NS", { nameServer: options.nameServer, signal: AbortSignal.timeout(timeoutMs) });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return;
        throw new DnsError(`DNS resolver ${server} did not answer: ${(err as Error).message}`, "TEMPFAIL", false);
      }
    },
    async mx(domain) {
      const records = await query<{ exchange: string; preference: number }[]>(normalize(domain), "MX");
      return records.map((r) => ({ exchange: normalize(r.exchange), preference: r.preference }));
    },
    async addresses(host) {
      const name = normalize(host);
      const results = await Promise.allSettled([query<string[]>(name, "A"), query<string[]>(name, "AAAA")]);
      const out = results.flatMap((r) => r.status === "fulfilled" ? r.value : []);
      if (out.length > 0) return out;
      const temp = results.find((r) => r.status === "rejected" && !(r.reason as DnsError).permanent);
      if (temp) throw (temp as PromiseRejectedResult).reason;
      throw new DnsError(`no A or AAAA records for ${name}`, "NODATA", true);
    },
    cacheEntries() {
      return [...cache].map(([key, e]) => {
        const space = key.indexOf(" ");
        const type = key.slice(0, space);
        const name = key.slice(space + 1);
        return {
          name,
          type: type as CacheEntry["type"],
          value: e.value,
          error: e.error?.message,
          expiresAt: e.expiresAt,
        };
      });
    },
    clearCache() {
      const n = cache.size;
      cache.clear();
      return n;
    },
    async refresh(domain) {
      const name = normalize(domain);
      for (const type of ["MX", "A", "AAAA"]) cache.delete(`${type} ${name}`);
      await this.mx(name).catch(() => {});
    },
    get size() {
      return cache.size;
    },
    close() {
      clearInterval(sweep);
    },
  };
}
