/**
 * Handlers of `dns.*` (the resolver's cache and per-domain overrides) and
 * `delivery.*` (runtime limits per destination).
 * @module
 */
import type { GroupHandlers } from "./context.ts";
import { ControlError } from "./protocol.ts";
import { dnsLookup } from "./security_handlers.ts";

/** `dns.*` and `delivery.*`. */
export const routingHandlers: GroupHandlers<"dns" | "delivery"> = {
  "dns.list-cache": (_args, ctx) => Promise.resolve({ entries: ctx.resolver.cacheEntries() }),
  "dns.clear-cache": (_args, ctx) => Promise.resolve({ cleared: ctx.resolver.clearCache() }),
  "dns.refresh": async ({ domain }, ctx) => {
    await ctx.resolver.refresh(domain);
    return { domain, entries: ctx.resolver.cacheEntries().filter((e) => e.name === domain) };
  },
  "dns.lookup": dnsLookup,
  "dns.list-overrides": (_args, ctx) =>
    Promise.resolve({
      overrides: [...ctx.delivery.overrides()].map(([domain, t]) => ({ domain, host: t.host, port: t.port })),
    }),
  "dns.set-override": async ({ domain, target }, ctx) => {
    await ctx.delivery.setOverride(domain, target);
    return { domain, host: target.host, port: target.port };
  },
  "dns.remove-override": async ({ domain }, ctx) => {
    if (!(await ctx.delivery.removeOverride(domain))) {
      throw new ControlError(
        `no runtime override for ${domain} (overrides from config.toml change there)`,
        "NOT_FOUND",
      );
    }
    return { domain, removed: true };
  },
  "delivery.rate-limit": async ({ domain, rate }, ctx) => {
    await ctx.delivery.setRate(domain, rate); // stored; mail held by the old rate becomes due now
    return { domain, rate: rate > 0 ? rate : null };
  },
};
