/**
 * Handlers of `queue.*`: listing and inspecting messages, and acting on them
 * (retry, delete, bounce, freeze) or on destinations (suspend, resume).
 * @module
 */
import type { GroupHandlers } from "./context.ts";
import { ControlError } from "./protocol.ts";
import { destinationRows, headerSummary, messageRow } from "./queue_views.ts";

const notInQueue = (id: string) => new ControlError(`no message ${id} in the queue`, "NOT_FOUND");
const notWaiting = (id: string, verb: string) =>
  new ControlError(`message ${id} is not in the queue waiting for delivery, so it was not ${verb}`, "NOT_FOUND");

/** `queue.*`. */
export const queueHandlers: GroupHandlers<"queue"> = {
  "queue.list": async ({ status, domain, priority, limit }, ctx) => {
    const rows = [];
    for await (const r of ctx.store.list({ status, domain, priority, limit: limit + 1 })) rows.push(messageRow(r));
    return { messages: rows.slice(0, limit), truncated: rows.length > limit };
  },
  "queue.view": async ({ id }, ctx) => {
    const r = await ctx.store.get(id);
    if (!r) throw notInQueue(id);
    const headers = await headerSummary(ctx.spool, id).catch(() => ({}));
    return { ...r, headers, inFlight: ctx.delivery.inFlight().includes(id) };
  },
  "queue.retry": async (selection, ctx) => {
    const n = await ctx.delivery.retryNow(selection);
    if ("id" in selection && n === 0) throw notWaiting(selection.id, "retried");
    return { retried: n };
  },
  "queue.delete": async ({ id }, ctx) => {
    if (!(await ctx.delivery.deleteMessage(id))) throw notInQueue(id);
    return { deleted: id };
  },
  "queue.bounce": async (selection, ctx) => {
    const n = await ctx.delivery.bounce(selection);
    if ("id" in selection && n === 0) {
      throw new ControlError(`no message ${selection.id} with pending recipients`, "NOT_FOUND");
    }
    return { bounced: n };
  },
  "queue.freeze": async (target, ctx) => {
    if ("everything" in target) {
      // Every queued message is held (persisted), and so is what arrives until unfreeze.
      ctx.delivery.setFrozen(true);
      return { scope: "all", frozen: await ctx.delivery.freeze({ all: true }) };
    }
    const n = await ctx.delivery.freeze(target);
    if ("id" in target && n === 0) throw notWaiting(target.id, "frozen");
    return { scope: "id" in target ? "message" : "domain", frozen: n };
  },
  "queue.unfreeze": async (target, ctx) => {
    if ("everything" in target) {
      ctx.delivery.setFrozen(false);
      return { scope: "all", unfrozen: await ctx.delivery.unfreeze({ all: true }) };
    }
    const n = await ctx.delivery.unfreeze(target);
    if ("id" in target && n === 0) throw new ControlError(`message ${target.id} is not frozen`, "NOT_FOUND");
    return { scope: "id" in target ? "message" : "domain", unfrozen: n };
  },
  "queue.set-priority": async ({ priority, ...selection }, ctx) => {
    const n = await ctx.delivery.setPriority(selection, priority);
    if ("id" in selection && n === 0) throw notWaiting(selection.id, "reprioritized");
    return { changed: n };
  },
  "queue.suspend": ({ domain, for: ms }, ctx) => {
    const until = Date.now() + ms;
    ctx.delivery.limits.suspend(domain, until);
    return Promise.resolve({ domain, until });
  },
  "queue.resume": ({ domain }, ctx) => {
    const was = ctx.delivery.limits.suspensions().some((s) => s.domain === domain);
    if (!was) return Promise.reject(new ControlError(`delivery to ${domain} is not suspended`, "NOT_FOUND"));
    ctx.delivery.limits.suspend(domain, 0);
    ctx.delivery.wake();
    return Promise.resolve({ domain, resumed: true });
  },
  "queue.suspended": (_args, ctx) => Promise.resolve({ suspensions: ctx.delivery.limits.suspensions() }),
  "queue.summary": async (_args, ctx) => ({ destinations: destinationRows(ctx, await ctx.store.stats(), Date.now()) }),
  "queue.process-now": async (_args, ctx) => ({ scheduled: await ctx.delivery.retryNow({ all: true }) }),
  "queue.stats": async (_args, ctx) => {
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
  },
};
