/**
 * The MTA-STS policy cache (RFC 8461 5): policies are kept until their `max_age` runs
 * out, in the queue store's durable state (`mta-sts/<domain>` → the policy as JSON,
 * expiring with it), so a restart opens no downgrade window and the nodes of a cluster
 * share them; they are refreshed in the background before they expire.
 *
 * Per delivery: the TXT id is looked up; the cached policy is used when the id is
 * unchanged; a new id (or none cached) means a fetch, unless the store already holds a
 * policy with that id (another node fetched it). A failed fetch keeps the cached policy
 * while it is unexpired (reported as `sts-policy-fetch-error`); with nothing cached the
 * domain has no policy for this attempt. A missing TXT record does not remove an
 * unexpired cached policy (RFC 8461 3.2).
 *
 * Before the store, policies lived in `<data_dir>/mta-sts-policies.json`; `importFile`
 * imports such a file once into the store and removes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openKvStore } from "../queue/mod.ts";
 * import { createResolver } from "./resolver.ts";
 * import { createStsCache } from "./mta_sts_cache.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const store = await openKvStore(`${dir}/queue.kv`);
 * const resolver = createResolver();
 * const sts = await createStsCache({ store, fetch: { resolver } });
 * // const { policy, error } = await sts.policyFor("example.com"); fetched once, then cached and refreshed
 * assert.deepEqual(sts.entries(), []); // nothing cached yet
 * sts.close();
 * resolver.close();
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { QueueStore, StateValue } from "../queue/mod.ts";
import { fetchStsPolicy, StsError, type StsFetchOptions, type StsPolicy, stsPolicyId } from "./mta_sts.ts";

/** The lookup result for one delivery. */
export interface StsLookup {
  policy?: StsPolicy;
  /** Set when the policy could not be (re)fetched; `policy` may still be a cached one. */
  error?: StsError;
}

/** The queue store operations the cache uses. */
export type StsStore = Pick<QueueStore, "getState" | "putState" | "listState">;

/** Cache settings. */
export interface StsCacheOptions {
  fetch: StsFetchOptions;
  /** Where policies persist (`mta-sts/<domain>` state keys); none: memory only. */
  store?: StsStore;
  /** A legacy `mta-sts-policies.json` to import into `store` once and remove (a missing file is fine). */
  importFile?: string;
  /** Called after `importFile` was imported and removed, with how many unexpired policies it held. */
  onImport?: (file: string, count: number) => void;
  now?: () => number;
  /** Background refresh check interval (default 1 h; 0 turns it off). */
  refreshEveryMs?: number;
  onRefresh?: (domain: string, result: StsLookup) => void;
  /** A policy could not be written to the store (it stays cached in memory). */
  onStoreError?: (domain: string, error: unknown) => void;
}

/** The cache. */
export interface StsCache {
  policyFor(domain: string): Promise<StsLookup>;
  /** Refreshes policies whose remaining lifetime is under half their max_age; returns how many were fetched. */
  refreshDue(): Promise<number>;
  entries(): StsPolicy[];
  close(): void;
}

/** The state key prefix of the policies. */
export const STS_STATE_PREFIX = "mta-sts/";

/** A stored value as a policy, or undefined when it is not one. */
function asPolicy(value: StateValue | null | undefined): StsPolicy | undefined {
  if (!value || typeof value !== "object" || Array.isArray(value)) return undefined;
  const v = value as Record<string, StateValue>;
  const ok = typeof v.domain === "string" && typeof v.id === "string" &&
    (v.mode === "enforce" || v.mode === "testing" || v.mode === "none") &&
    Array.isArray(v.mx) && v.mx.every((m) => typeof m === "string") &&
    typeof v.maxAge === "number" && typeof v.fetchedAt === "number" && typeof v.expiresAt === "number";
  return ok ? value as unknown as StsPolicy : undefined;
}

const toState = (p: StsPolicy): StateValue => ({ ...p, mx: [...p.mx] });

/** Imports a legacy policy file into the store (keeping a fresher stored policy) and removes it. */
async function importLegacy(file: string, store: StsStore, now: number): Promise<number | undefined> {
  let saved: unknown;
  try {
    saved = JSON.parse(await Deno.readTextFile(file));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  let n = 0;
  for (const raw of Array.isArray(saved) ? saved : []) {
    const p = asPolicy(raw as StateValue);
    if (!p || p.expiresAt <= now) continue;
    const domain = p.domain.toLowerCase().replace(/\.$/, "");
    const stored = asPolicy(await store.getState(`${STS_STATE_PREFIX}${domain}`));
    if (stored && stored.fetchedAt >= p.fetchedAt) continue;
    await store.putState(`${STS_STATE_PREFIX}${domain}`, toState({ ...p, domain }), p.expiresAt);
    n++;
  }
  await Deno.remove(file);
  return n;
}

/** Imports a legacy file (if any), loads the stored policies and starts the refresh timer. */
export async function createStsCache(options: StsCacheOptions): Promise<StsCache> {
  const now = options.now ?? Date.now;
  const store = options.store;
  const policies = new Map<string, StsPolicy>();
  if (store) {
    if (options.importFile) {
      const n = await importLegacy(options.importFile, store, now());
      if (n !== undefined) options.onImport?.(options.importFile, n);
    }
    for (const e of await store.listState(STS_STATE_PREFIX)) {
      const p = asPolicy(e.value);
      if (p && p.expiresAt > now()) policies.set(e.key.slice(STS_STATE_PREFIX.length), p);
    }
  }
  const persist = async (domain: string, policy: StsPolicy) => {
    try {
      await store?.putState(`${STS_STATE_PREFIX}${domain}`, toState(policy), policy.expiresAt);
    } catch (err) {
      options.onStoreError?.(domain, err);
    }
  };
  /** The stored policy of `domain` when it is unexpired (another node may have fetched it). */
  const stored = async (domain: string): Promise<StsPolicy | undefined> => {
    try {
      const p = asPolicy(await store?.getState(`${STS_STATE_PREFIX}${domain}`));
      return p && p.expiresAt > now() ? p : undefined;
    } catch {
      return undefined;
    }
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
      if (!cached && store) {
        cached = await stored(domain);
        if (cached) policies.set(domain, cached);
      }
      if (cached) return e.code === "STS_NONE" ? { policy: cached } : { policy: cached, error: e };
      return e.code === "STS_NONE" ? {} : { error: e };
    }
    if (cached && cached.id === id) return { policy: cached };
    if (store) {
      const shared = await stored(domain);
      if (shared && (shared.id === id || !cached || shared.fetchedAt > cached.fetchedAt)) {
        policies.set(domain, shared);
        cached = shared;
        if (shared.id === id) return { policy: shared };
      }
    }
    try {
      const policy = await fetchStsPolicy(domain, fetchOptions, id);
      policies.set(domain, policy);
      await persist(domain, policy);
      return { policy };
    } catch (err) {
      const e = err instanceof StsError ? err : new StsError((err as Error).message, "STS_FETCH");
      return cached ? { policy: cached, error: e } : { error: e };
    }
  }

  async function refreshDue(): Promise<number> {
    let n = 0;
    for (const [domain, p] of [...policies.entries()]) {
      if (p.expiresAt <= now()) {
        policies.delete(domain);
        continue;
      }
      if (p.expiresAt - now() > (p.maxAge * 1000) / 2) continue;
      const shared = store ? await stored(domain) : undefined;
      if (shared && shared.expiresAt - now() > (shared.maxAge * 1000) / 2) {
        policies.set(domain, shared); // another node refreshed it
        continue;
      }
      try {
        const fresh = await fetchStsPolicy(p.domain, fetchOptions);
        policies.set(domain, fresh);
        await persist(domain, fresh);
        n++;
        options.onRefresh?.(p.domain, { policy: fresh });
      } catch (err) {
        options.onRefresh?.(p.domain, { policy: p, error: err as StsError });
      }
    }
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
