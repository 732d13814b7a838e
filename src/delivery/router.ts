/**
 * Routing: where a domain's mail goes. Precedence: per-domain override, relay
 * host, MX records (sorted by preference, equal preferences shuffled as RFC 5321
 * 5.1 asks), implicit MX (the domain's own A/AAAA) when there is no MX, and a
 * permanent failure for a null MX (RFC 7505).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createResolver } from "./resolver.ts";
 * import { routeDomain } from "./router.ts"; // @ts-ignore deno#26900
 *
 * const resolver = createResolver();
 * const mxOverrides = new Map([["example.com", { host: "10.0.0.5", port: 2525 }]]);
 * const route = await routeDomain("example.com", resolver, { mxOverrides, defaultPort: 25 }); // no DNS needed
 * assert.equal(route.kind, "override");
 * assert.deepEqual(route.hosts.map((h) => [h.host, h.port]), [["10.0.0.5", 2525]]);
 * resolver.close();
 * ```
 * @module
 */
import { DnsError, type Resolver } from "./resolver.ts";

export { DnsError };

/** One host to try. */
export interface RouteHost {
  host: string;
  port: number;
  preference: number;
}

/** The hosts for a domain, in the order to try them. */
export interface Route {
  domain: string;
  kind: "override" | "relay" | "mx" | "implicit";
  hosts: RouteHost[];
}

/** Routing settings. */
export interface RoutePolicy {
  relayHost?: { host: string; port: number };
  mxOverrides: Map<string, { host: string; port: number }>;
  defaultPort: number;
  random?: () => number;
}

/** Exact domain first, then the longest matching `*.suffix` wildcard. */
export function matchDomainPolicy<T>(domain: string, table: Map<string, T>): T | undefined {
  const d = domain.toLowerCase().replace(/\.$/, "");
  const exact = table.get(d);
  if (exact !== undefined) return exact;
  let best: T | undefined;
  let bestLen = -1;
  for (const [key, value] of table) {
    if (!key.startsWith("*.")) continue;
    const suffix = key.slice(1); // ".example.com"
    if (d.endsWith(suffix) && suffix.length > bestLen) {
      best = value;
      bestLen = suffix.length;
    }
  }
  return best;
}

/** A configured "host:port" as a next hop; undefined when it is unset (or has no host). */
export function nextHop(
  value: { host?: string; port: number } | undefined,
): { host: string; port: number } | undefined {
  return value?.host === undefined ? undefined : { host: value.host, port: value.port };
}

/** Resolves the route for a domain; throws DnsError (check `permanent`). */
export async function routeDomain(domain: string, resolver: Resolver, policy: RoutePolicy): Promise<Route> {
  const d = domain.toLowerCase().replace(/\.$/, "");
  const override = matchDomainPolicy(d, policy.mxOverrides);
  if (override) return { domain: d, kind: "override", hosts: [{ ...override, preference: 0 }] };
  if (policy.relayHost) return { domain: d, kind: "relay", hosts: [{ ...policy.relayHost, preference: 0 }] };
  const literal = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(d);
  if (literal) {
    return { domain: d, kind: "implicit", hosts: [{ host: literal[1]!, port: policy.defaultPort, preference: 0 }] };
  }

  let mx;
  try {
    mx = await resolver.mx(d);
  } catch (err) {
    if (!(err instanceof DnsError) || !err.permanent) throw err;
    // No MX: the domain itself is the implicit MX (RFC 5321 5.1), if it has an address.
    await resolver.addresses(d).catch((e) => {
      throw e instanceof DnsError && e.permanent
        ? new DnsError(`${d} has no MX and no A/AAAA records (or does not exist)`, "NXDOMAIN", true)
        : e;
    });
    return { domain: d, kind: "implicit", hosts: [{ host: d, port: policy.defaultPort, preference: 0 }] };
  }
  const only = mx.length === 1 ? mx[0] : undefined;
  if (only && (only.exchange === "" || only.exchange === ".") && only.preference === 0) {
    throw new DnsError(`${d} publishes a null MX: it accepts no mail (RFC 7505)`, "NULL_MX", true);
  }
  const random = policy.random ?? Math.random;
  const sorted = mx.filter((r) => r.exchange !== "" && r.exchange !== ".")
    .map((r) => ({ r, key: random() }))
    .sort((a, b) => a.r.preference - b.r.preference || a.key - b.key)
    .map(({ r }) => ({ host: r.exchange, port: policy.defaultPort, preference: r.preference }));
  return { domain: d, kind: "mx", hosts: sorted };
}
