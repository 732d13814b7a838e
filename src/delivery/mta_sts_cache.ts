/**
 * The MTA-STS policy cache (RFC 8461 5): policies are kept until their `max_age` runs
 * out, written to a JSON file under the data directory (so a restart opens no
 * downgrade window), and refreshed in the background before they expire.
 *
 * Per delivery: the TXT id is looked up; the cached policy is used when the id is
 * unchanged; a new id (or none cached) means a fetch. A failed fetch keeps the cached
 * policy while it is unexpired (reported as `sts-policy-fetch-error`); with nothing
 * cached the domain has no policy for this attempt. A missing TXT record does not
 * remove an unexpired cached policy (RFC 8461 3.2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createResolver } from "./resolver.ts";
 * import { createStsCache } from "./mta_sts_cache.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const resolver = createResolver();
 * const sts = await createStsCache({ file: `${dir}/mta-sts.json`, fetch: { resolver } });
 * // const { policy, error } = await sts.policyFor("example.com"); fetched once, then cached and refreshed
 * assert.deepEqual(sts.entries(), []); // nothing cached yet
 * sts.close();
 * resolver.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { fetchStsPolicy, StsError, type StsFetchOptions, type StsPolicy, stsPolicyId } from "./mta_sts.ts";

/** The lookup result for one delivery. */
export interface StsLookup {
  policy?: StsPolicy;
  /** Set when the policy could not be (re)fetched; `policy` may still be a cached one. */
  error?: StsError;
}

/** Cache settings. */
export interface StsCacheOptions {
  fetch: StsFetchOptions;
  /** Where policies persist; none: memory only. */
  file?: string;
  now?: () => number;
  /** Background refresh check interval (default 1 h; 0 turns it off). */
  refreshEveryMs?: number;
  onRefresh?: (domain: string, result: StsLookup) => void;
}

/** The cache. */
export interface StsCache {
  policyFor(domain: string): Promise<StsLookup>;
  /** Refreshes policies whose remaining lifetime is under half their max_age; returns how many were fetched. */
  refreshDue(): Promise<number>;
  entries(): StsPolicy[];
  close(): void;
}

/** Loads the cache file (if any) and starts the refresh timer. */
export async function createStsCache(options: StsCacheOptions): Promise<StsCache> {
  const now = options.now ?? Date.now;
  const policies = new Map<string, StsPolicy>();
  if (options.file) {
    try {
      const saved = JSON.parse(await Deno.readTextFile(options.file)) as StsPolicy[];
      for (const p of saved) if (p.expiresAt > now()) policies.set(p.domain, p);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  let writing = Promise.resolve();
  const persist = () => {
    if (!options.file) return Promise.resolve();
    const file = options.file;
    writing = writing.then(async () => {
      const tmp = `${file}.tmp`;
      await Deno.writeTextFile(tmp, JSON.stringify([...policies.values()], null, 1));
      await Deno.rename(tmp, file);
    }).catch(() => {});
    return writing;
  };
  const fetchOptions = { ...options.fetch, now };

  async function policyFor(rawDomain: string): Promise<StsLookup> {
    const domain = rawDomain.toLowerCase().replace(/\.$/, "");
    let cached = policies.get(domain);
    if (cached && cached.expiresAt <= now()) {
      policies.delete(domain);
      cached = undefined;
    }
    let id: string;
    try {
      id = await stsPolicyId(domain, fetchOptions.resolver);
    } catch (err) {
      const e = err as StsError;
      if (cached) return e.code === "STS_NONE" ? { policy: cached } : { policy: cached, error: e };
      return e.code === "STS_NONE" ? {} : { error: e };
    }
    if (cached && cached.id === id) return { policy: cached };
    try {
      const policy = await fetchStsPolicy(domain, fetchOptions, id);
      policies.set(domain, policy);
      await persist();
      return { policy };
    } catch (err) {
      const e = err instanceof StsError ? err : new StsError((err as Error).message, "STS_FETCH");
      return cached ? { policy: cached, error: e } : { error: e };
    }
  }

  async function refreshDue(): Promise<number> {
    let n = 0;
    for (const p of [...policies.values()]) {
      if (p.expiresAt - now() > (p.maxAge * 1000) / 2) continue;
      try {
        const fresh = await fetchStsPolicy(p.domain, fetchOptions);
        policies.set(p.domain, fresh);
        n++;
        options.onRefresh?.(p.domain, { policy: fresh });
      } catch (err) {
        options.onRefresh?.(p.domain, { policy: p, error: err as StsError });
      }
    }
    if (n > 0) await persist();
    return n;
  }

  const every = options.refreshEveryMs ?? 3_600_000;
  const timer = every > 0 ? setInterval(() => void refreshDue(), every) : undefined;
  if (timer !== undefined) Deno.unrefTimer(timer as unknown as number);

  return {
    policyFor,
    refreshDue,
    entries: () => [...policies.values()],
    close: () => clearInterval(timer),
  };
}
