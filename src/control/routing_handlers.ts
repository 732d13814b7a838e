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
  "dns.set-override": ({ domain, target }, ctx) => {
    ctx.delivery.setOverride(domain, target);
    return Promise.resolve({ domain, host: target.host, port: target.port });
  },
  "dns.remove-override": ({ domain }, ctx) => {
    if (!ctx.delivery.removeOverride(domain)) {
      return Promise.reject(
        new ControlError(`no runtime override for ${domain} (overrides from config.toml change there)`, "NOT_FOUND"),
      );
    }
    return Promise.resolve({ domain, removed: true });
  },
  "delivery.rate-limit": ({ domain, rate }, ctx) => {
    ctx.delivery.limits.setRate(domain, rate);
    return Promise.resolve({ domain, rate: rate > 0 ? rate : null });
  },
};
