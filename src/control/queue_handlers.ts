/**
 * Handlers of `queue.*`: listing and inspecting messages, and acting on them
 * (retry, delete, bounce, freeze) or on destinations (suspend, resume).
 * @module
 */
import { encodeBase64 } from "./base64.ts";
import type { GroupHandlers } from "./context.ts";
import { ControlError } from "./protocol.ts";
import { bounceReply, runBulk } from "./queue_actions.ts";
import { destinationRows, headerSummary, messageRow, readMessage } from "./queue_views.ts";
import { recordMatcher } from "./selector.ts";

const notInQueue = (id: string) => new ControlError(`no message ${id} in the queue`, "NOT_FOUND");
const notWaiting = (id: string, verb: string) =>
  new ControlError(`message ${id} is not in the queue waiting for delivery, so it was not ${verb}`, "NOT_FOUND");

/** `queue.*`. */
export const queueHandlers: GroupHandlers<"queue"> = {
  "queue.list": async ({ status, domain, priority, from, to, limit }, ctx) => {
    const rows = [];
    const matches = recordMatcher({ from, to }, Date.now());
    for await (const r of ctx.store.list({ status, domain, priority })) {
      if (!matches(r)) continue;
      rows.push(messageRow(r));
      if (rows.length > limit) break;
    }
    return { messages: rows.slice(0, limit), truncated: rows.length > limit };
  },
  "queue.cat": async ({ id, part }, ctx) => {
    if (!(await ctx.store.get(id))) throw notInQueue(id);
    const data = await readMessage(ctx.spool, id, part);
    return { id, part, bytes: data.length, base64: encodeBase64(data) };
  },
  "queue.view": async ({ id }, ctx) => {
    const r = await ctx.store.get(id);
    if (!r) throw notInQueue(id);
    const headers = await headerSummary(ctx.spool, id).catch(() => ({}));
    return { ...r, headers, inFlight: ctx.delivery.inFlight().includes(id) };
  },
  "queue.retry": async (selection, ctx) => {
    if ("bulk" in selection) return await runBulk("retry", selection, ctx);
    const n = await ctx.delivery.retryNow(selection);
    if ("id" in selection && n === 0) throw notWaiting(selection.id, "retried");
    return { retried: n };
  },
  "queue.delete": async (target, ctx) => {
    if ("bulk" in target) return await runBulk("delete", target, ctx);
    if (!("id" in target)) throw new ControlError("queue.delete takes a message id or a selector", "BAD_ARGS");
    if (!(await ctx.delivery.deleteMessage(target.id))) throw notInQueue(target.id);
    return { deleted: target.id };
  },
  "queue.hold": (target, ctx) => runBulk("hold", target, ctx),
  "queue.release": (target, ctx) => runBulk("release", target, ctx),
  "queue.bounce": async ({ reason, ...selection }, ctx) => {
    if ("bulk" in selection) return await runBulk("bounce", selection, ctx, reason);
    const n = await ctx.delivery.bounce(selection, bounceReply(reason));
    if ("id" in selection && n === 0) {
      throw new ControlError(`no message ${selection.id} with pending recipients`, "NOT_FOUND");
    }
    return { bounced: n };
  },
  "queue.freeze": async (target, ctx) => {
    if ("everything" in target) {
      // Every queued message is held (persisted), and so is what arrives until unfreeze.
      await ctx.delivery.setFrozen(true);
      return { scope: "all", frozen: await ctx.delivery.freeze({ all: true }) };
    }
    const n = await ctx.delivery.freeze(target);
    if ("id" in target && n === 0) throw notWaiting(target.id, "frozen");
    return { scope: "id" in target ? "message" : "domain", frozen: n };
  },
  "queue.unfreeze": async (target, ctx) => {
    if ("everything" in target) {
      // Mail that arrived during the global freeze waits as queued, not frozen: it is released too.
      const held = ctx.delivery.frozen ? (await ctx.store.due(Date.now(), 1_000_000)).length : 0;
      await ctx.delivery.setFrozen(false);
      return { scope: "all", unfrozen: held + await ctx.delivery.unfreeze({ all: true }) };
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
  "queue.suspend": async ({ domain, for: ms }, ctx) => {
    const until = Date.now() + ms;
    await ctx.delivery.suspend(domain, until);
    return { domain, until };
  },
  "queue.resume": async ({ domain }, ctx) => {
    const was = ctx.delivery.limits.suspensions().some((s) => s.domain === domain);
    if (!was) throw new ControlError(`delivery to ${domain} is not suspended`, "NOT_FOUND");
    await ctx.delivery.suspend(domain, 0); // releases the mail the suspension held
    ctx.delivery.wake();
    return { domain, resumed: true };
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
