/**
 * What the daemon answers on its control socket: one handler per
 * `empathctl <group> <command>`, named "group.command". Arguments are checked
 * here (BAD_ARGS names the argument and what was expected); state changes go
 * through the delivery engine, the resolver and the limits, never around them.
 * @module
 */
import type { Config } from "../config/mod.ts";
import { parseDuration } from "../config/mod.ts";
import type { DeliveryEngine, Resolver } from "../delivery/mod.ts";
import type { MessageStatus, QueueRecord, QueueStats, QueueStore } from "../queue/mod.ts";
import type { SessionInfo } from "../smtp/mod.ts";
import type { Spool } from "../spool/mod.ts";
import { ControlError } from "./protocol.ts";
import type { CommandHandler } from "./server.ts";

/** The outcome of the last config reload. */
export interface ReloadReport {
  at: number;
  ok: boolean;
  error?: string;
  changed: string[];
  needsRestart: string[];
}

/** Running totals since start (rates are computed from them). */
export interface Totals {
  received: number;
  delivered: number;
  deferred: number;
  failed: number;
}

/** Everything the handlers reach into. */
export interface ControlContext {
  version: string;
  startedAt: number;
  configPath: string;
  config(): Config;
  addresses: { name: string; role: string; host: string; port: number }[];
  store: QueueStore;
  spool: Spool;
  delivery: DeliveryEngine;
  resolver: Resolver;
  sessions(): SessionInfo[];
  reload(): Promise<ReloadReport>;
  lastReload(): ReloadReport | undefined;
  logLevel(): string;
  setLogLevel(level: string): Promise<void>;
  totals(): Totals;
}

const STATUSES: MessageStatus[] = ["queued", "delivering", "deferred", "frozen", "delivered", "failed"];
const LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"];
const DOMAIN_RE = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i;

const bad = (message: string) => new ControlError(message, "BAD_ARGS");

function str(args: Record<string, unknown>, key: string, required: true): string;
function str(args: Record<string, unknown>, key: string, required?: false): string | undefined;
function str(args: Record<string, unknown>, key: string, required = false): string | undefined {
  const v = args[key];
  if (v === undefined || v === null || v === "") {
    if (required) throw bad(`missing argument "${key}"`);
    return undefined;
  }
  if (typeof v !== "string" || v.length > 1000) throw bad(`argument "${key}" must be a string`);
  return v;
}

function domainArg(args: Record<string, unknown>, key = "domain", required = false): string | undefined {
  const d = required ? str(args, key, true) : str(args, key);
  if (d !== undefined && !DOMAIN_RE.test(d)) throw bad(`"${d}" is not a domain name (argument "${key}")`);
  return d?.toLowerCase().replace(/\.$/, "");
}

function idArg(args: Record<string, unknown>): string {
  const id = str(args, "id", true);
  if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)) {
    throw bad(`"${id}" is not a message id (26 characters, e.g. from "queue list")`);
  }
  return id;
}

/** `{id}` or `{all}` / `{domain}`: which messages an operation is for. */
function selection(args: Record<string, unknown>, verb: string) {
  const domain = domainArg(args);
  if (args.id !== undefined) return { id: idArg(args) };
  if (args.all === true) return { all: true, domain };
  if (domain) return { domain };
  throw bad(`say which messages to ${verb}: a message id, --domain DOMAIN or --all`);
}

const domainOf = (address: string) => address.slice(address.lastIndexOf("@") + 1).toLowerCase();

function row(r: QueueRecord) {
  const pending = r.recipients.filter((x) => x.status === "pending" || x.status === "deferred");
  return {
    id: r.id,
    status: r.status,
    sender: r.sender,
    recipients: r.recipients.length,
    pending: pending.length,
    domains: [...new Set(r.recipients.map((x) => domainOf(x.address)))],
    size: r.size,
    receivedAt: r.receivedAt,
    nextAttemptAt: r.nextAttemptAt,
    attempts: Math.max(0, ...r.recipients.map((x) => x.attempts)),
    lastReply: pending.find((x) => x.lastReply)?.lastReply,
  };
}

/** First lines of the header block: the fields operators look for. */
async function headerSummary(spool: Spool, id: string): Promise<Record<string, string>> {
  const stream = await spool.openStream(id);
  let text = "";
  for await (const chunk of stream) {
    text += new TextDecoder().decode(chunk as Uint8Array, { stream: true });
    if (text.includes("\r\n\r\n") || text.length > 256 * 1024) break;
  }
  stream.destroy();
  const head = text.split("\r\n\r\n")[0].replace(/\r\n[ \t]+/g, " ");
  const wanted = ["from", "to", "cc", "subject", "date", "message-id"];
  const out: Record<string, string> = {};
  for (const line of head.split("\r\n")) {
    const m = /^([^:\s]+):\s*(.*)$/.exec(line);
    if (m && wanted.includes(m[1].toLowerCase()) && !(m[1].toLowerCase() in out)) {
      out[m[1].toLowerCase()] = m[2].slice(0, 300);
    }
  }
  return out;
}

function summary(ctx: ControlContext, stats: QueueStats, now: number) {
  const limits = new Map(ctx.delivery.limits.all(now).map((s) => [s.domain, s]));
  const replies = ctx.delivery.lastReplies();
  const domains = new Set([
    ...Object.keys(stats.domains),
    ...ctx.delivery.limits.suspensions(now).map((s) => s.domain),
  ]);
  return [...domains].map((domain) => {
    const q = stats.domains[domain];
    const l = limits.get(domain);
    return {
      domain,
      messages: q?.messages ?? 0,
      oldestAgeSeconds: q ? Math.round((now - q.oldestReceivedAt) / 1000) : 0,
      lastError: replies.get(domain)?.reply ?? l?.lastError,
      circuit: l?.circuit ?? "closed",
      suspendedUntil: l?.suspendedUntil,
      activeConnections: l?.active ?? 0,
    };
  }).sort((a, b) => b.messages - a.messages || (a.domain < b.domain ? -1 : 1));
}

/** Builds the handler table for a running daemon. */
export function createHandlers(ctx: ControlContext): Record<string, CommandHandler> {
  const read = (run: CommandHandler["run"]): CommandHandler => ({ mutates: false, run });
  const write = (run: CommandHandler["run"]): CommandHandler => ({ mutates: true, run });
  return {
    "system.ping": read(() => ({ pong: true, version: ctx.version })),
    "system.status": read(async () => {
      const stats = await ctx.store.stats();
      return {
        version: ctx.version,
        pid: Deno.pid,
        startedAt: ctx.startedAt,
        uptimeSeconds: Math.round((Date.now() - ctx.startedAt) / 1000),
        configPath: ctx.configPath,
        listeners: ctx.addresses,
        queue: stats.counts,
        oldestAgeSeconds: stats.oldestReceivedAt === null
          ? 0
          : Math.round((Date.now() - stats.oldestReceivedAt) / 1000),
        dnsCacheEntries: ctx.resolver.size,
        deliveryFrozen: ctx.delivery.frozen,
        deliveryEnabled: ctx.config().delivery.enabled,
        inFlight: ctx.delivery.inFlight().length,
        smtpSessions: ctx.sessions().length,
        logLevel: ctx.logLevel(),
        lastReload: ctx.lastReload(),
      };
    }),
    "system.reload-config": write(async () => {
      const report = await ctx.reload();
      if (!report.ok) {
        throw new ControlError(`the new config was rejected, the old one stays: ${report.error}`, "FAILED");
      }
      return report;
    }),
    "system.log-level": write(async (args) => {
      const level = str(args, "level", true);
      if (!LEVELS.includes(level)) throw bad(`log level "${level}": expected one of ${LEVELS.join(", ")}`);
      const previous = ctx.logLevel();
      await ctx.setLogLevel(level);
      return { level, previous };
    }),

    "queue.list": read(async (args) => {
      const status = str(args, "status") as MessageStatus | undefined;
      if (status && !STATUSES.includes(status)) throw bad(`status "${status}": expected one of ${STATUSES.join(", ")}`);
      const limit = args.limit === undefined ? 100 : Number(args.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
        throw bad("limit: expected a whole number 1-100000");
      }
      const rows = [];
      for await (const r of ctx.store.list({ status, domain: domainArg(args), limit: limit + 1 })) rows.push(row(r));
      return { messages: rows.slice(0, limit), truncated: rows.length > limit };
    }),
    "queue.view": read(async (args) => {
      const id = idArg(args);
      const r = await ctx.store.get(id);
      if (!r) throw new ControlError(`no message ${id} in the queue`, "NOT_FOUND");
      const headers = await headerSummary(ctx.spool, id).catch(() => ({}));
      return { ...r, headers, inFlight: ctx.delivery.inFlight().includes(id) };
    }),
    "queue.retry": write(async (args) => {
      const filter = selection(args, "retry");
      const n = await ctx.delivery.retryNow(filter);
      if (filter.id && n === 0) throw notWaiting(ctx, filter.id, "retried");
      return { retried: n };
    }),
    "queue.delete": write(async (args) => {
      const id = idArg(args);
      if (!(await ctx.delivery.deleteMessage(id))) throw new ControlError(`no message ${id} in the queue`, "NOT_FOUND");
      return { deleted: id };
    }),
    "queue.bounce": write(async (args) => {
      const filter = selection(args, "bounce");
      const n = await ctx.delivery.bounce(filter);
      if (filter.id && n === 0) throw new ControlError(`no message ${filter.id} with pending recipients`, "NOT_FOUND");
      return { bounced: n };
    }),
    "queue.freeze": write(async (args) => {
      if (args.id === undefined && !args.domain) {
        // Every queued message is held (persisted), and so is what arrives until unfreeze.
        ctx.delivery.setFrozen(true);
        return { scope: "all", frozen: await ctx.delivery.freeze({ all: true }) };
      }
      const filter = selection(args, "freeze");
      const n = await ctx.delivery.freeze(filter);
      if (filter.id && n === 0) throw notWaiting(ctx, filter.id, "frozen");
      return { scope: filter.id ? "message" : "domain", frozen: n };
    }),
    "queue.unfreeze": write(async (args) => {
      if (args.id === undefined && !args.domain) {
        ctx.delivery.setFrozen(false);
        return { scope: "all", unfrozen: await ctx.delivery.unfreeze({ all: true }) };
      }
      const filter = selection(args, "unfreeze");
      const n = await ctx.delivery.unfreeze(filter);
      if (filter.id && n === 0) throw new ControlError(`message ${filter.id} is not frozen`, "NOT_FOUND");
      return { scope: filter.id ? "message" : "domain", unfrozen: n };
    }),
    "queue.suspend": write((args) => {
      const domain = domainArg(args, "domain", true)!;
      const text = str(args, "for", true);
      const ms = parseDuration(text);
      if (ms === undefined || ms <= 0) throw bad(`--for "${text}": expected a duration like "30m", "2h" or "1d"`);
      const until = Date.now() + ms;
      ctx.delivery.limits.suspend(domain, until);
      return { domain, until };
    }),
    "queue.resume": write((args) => {
      const domain = domainArg(args, "domain", true)!;
      const was = ctx.delivery.limits.suspensions().some((s) => s.domain === domain);
      if (!was) throw new ControlError(`delivery to ${domain} is not suspended`, "NOT_FOUND");
      ctx.delivery.limits.suspend(domain, 0);
      ctx.delivery.wake();
      return { domain, resumed: true };
    }),
    "queue.suspended": read(() => ({ suspensions: ctx.delivery.limits.suspensions() })),
    "queue.summary": read(async () => ({ destinations: summary(ctx, await ctx.store.stats(), Date.now()) })),
    "queue.process-now": write(async () => ({ scheduled: await ctx.delivery.retryNow({ all: true }) })),
    "queue.stats": read(async () => {
      const now = Date.now();
      const stats = await ctx.store.stats();
      const domains = Object.entries(stats.domains).map(([domain, d]) => ({ domain, messages: d.messages }))
        .sort((a, b) => b.messages - a.messages).slice(0, 20);
      return {
        at: now,
        startedAt: ctx.startedAt,
        counts: stats.counts,
        total: Object.values(stats.counts).reduce((a, b) => a + b, 0),
        oldestAgeSeconds: stats.oldestReceivedAt === null ? 0 : Math.round((now - stats.oldestReceivedAt) / 1000),
        domains,
        totals: ctx.totals(),
      };
    }),

    "dns.list-cache": read(() => ({ entries: ctx.resolver.cacheEntries() })),
    "dns.clear-cache": write(() => ({ cleared: ctx.resolver.clearCache() })),
    "dns.refresh": write(async (args) => {
      const domain = domainArg(args, "domain", true)!;
      await ctx.resolver.refresh(domain);
      return { domain, entries: ctx.resolver.cacheEntries().filter((e) => e.name === domain) };
    }),
    "dns.list-overrides": read(() => ({
      overrides: [...ctx.delivery.overrides()].map(([domain, t]) => ({ domain, host: t.host, port: t.port })),
    })),
    "dns.set-override": write((args) => {
      const domain = domainArg(args, "domain", true)!;
      const target = str(args, "target", true);
      const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(target);
      if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) {
        throw bad(`"${target}": expected HOST:PORT, e.g. 10.0.0.5:25`);
      }
      ctx.delivery.setOverride(domain, { host: m[1] ?? m[2], port: Number(m[3]) });
      return { domain, host: m[1] ?? m[2], port: Number(m[3]) };
    }),
    "dns.remove-override": write((args) => {
      const domain = domainArg(args, "domain", true)!;
      if (!ctx.delivery.removeOverride(domain)) {
        throw new ControlError(
          `no runtime override for ${domain} (overrides from config.toml change there)`,
          "NOT_FOUND",
        );
      }
      return { domain, removed: true };
    }),

    "smtp.connections": read(() => ({
      sessions: ctx.sessions().map((s) => ({ ...s, ageSeconds: Math.round((Date.now() - s.startedAt) / 1000) })),
    })),
    "delivery.rate-limit": write((args) => {
      const domain = domainArg(args, "domain", true)!;
      const rate = Number(args.rate);
      if (!Number.isFinite(rate) || rate < 0) {
        throw bad(`rate "${args.rate}": expected messages per second (0 removes the limit)`);
      }
      ctx.delivery.limits.setRate(domain, rate);
      return { domain, rate: rate > 0 ? rate : null };
    }),
  };
}

function notWaiting(_ctx: ControlContext, id: string, verb: string) {
  return new ControlError(`message ${id} is not in the queue waiting for delivery, so it was not ${verb}`, "NOT_FOUND");
}
