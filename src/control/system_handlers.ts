/**
 * Handlers of `system.*` (the daemon as a whole) and `smtp.*` (its sessions).
 * @module
 */
import type { GroupHandlers } from "./context.ts";
import { ControlError } from "./protocol.ts";

const ageSeconds = (since: number, now = Date.now()) => Math.round((now - since) / 1000);

/** `system.*` and `smtp.*`. */
export const systemHandlers: GroupHandlers<"system" | "smtp" | "cluster"> = {
  "system.ping": (_args, ctx) => Promise.resolve({ pong: true, version: ctx.version }),
  "system.status": async (_args, ctx) => {
    const stats = await ctx.store.stats();
    return {
      version: ctx.version,
      pid: Deno.pid,
      startedAt: ctx.startedAt,
      uptimeSeconds: ageSeconds(ctx.startedAt),
      configPath: ctx.configPath,
      listeners: ctx.addresses,
      queue: stats.counts,
      oldestAgeSeconds: stats.oldestReceivedAt === null ? 0 : ageSeconds(stats.oldestReceivedAt),
      dnsCacheEntries: ctx.resolver.size,
      deliveryFrozen: ctx.delivery.frozen,
      deliveryEnabled: ctx.config().delivery.enabled,
      inFlight: ctx.delivery.inFlight().length,
      smtpSessions: ctx.sessions().length,
      logLevel: ctx.logLevel(),
      lastReload: ctx.lastReload(),
      ...(ctx.cluster ? { cluster: { node: ctx.cluster.node, nodes: await ctx.cluster.nodes() } } : {}),
    };
  },
  "cluster.nodes": async (_args, ctx) => ({
    node: ctx.cluster?.node ?? null,
    nodes: ctx.cluster ? await ctx.cluster.nodes() : [],
  }),
  "system.reload-config": async (_args, ctx) => {
    const report = await ctx.reload();
    if (!report.ok) {
      throw new ControlError(`the new config was rejected, the old one stays: ${report.error}`, "FAILED");
    }
    return report;
  },
  "system.log-level": async ({ level }, ctx) => {
    const previous = ctx.logLevel();
    await ctx.setLogLevel(level);
    return { level, previous };
  },
  "smtp.connections": (_args, ctx) => {
    const now = Date.now();
    return Promise.resolve({
      sessions: ctx.sessions().map((s) => ({ ...s, ageSeconds: ageSeconds(s.startedAt, now) })),
    });
  },
  "smtp.kill": ({ id }, ctx) => {
    if (!ctx.killSession?.(id)) {
      return Promise.reject(new ControlError(`no SMTP session ${id} (see "smtp connections")`, "NOT_FOUND"));
    }
    return Promise.resolve({ id, killed: true });
  },
};
