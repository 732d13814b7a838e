/**
 * Bulk operator actions by selector: the daemon walks the queue once in pages
 * (see selector.ts) and applies the action to each page concurrently, so 10,000
 * matching messages are one control call and a few dozen store batches, never
 * one round trip each. A dry run only counts.
 * @module
 */
import type { BulkResult } from "./api_results.ts";
import type { BulkTarget } from "./api_args.ts";
import type { ControlContext } from "./context.ts";
import { selectPages } from "./selector.ts";

/** A bulk action's name. */
export type BulkAction = BulkResult["action"];

/** Messages handled at once (written concurrently, so the store can group-commit them). */
export const BULK_PAGE = 256;

/**
 * The reply recorded for recipients bounced by the operator with a reason: `550 5.0.0 <reason>`
 * (it becomes the DSN's Diagnostic-Code); undefined keeps the engine's default text.
 */
export const bounceReply = (reason?: string) => reason === undefined ? undefined : `550 5.0.0 ${reason}`;

/** Applies `action` to one message; true when it changed it. */
function actOn(action: BulkAction, id: string, ctx: ControlContext, reason?: string): Promise<boolean> {
  const d = ctx.delivery;
  switch (action) {
    case "delete":
      return d.deleteMessage(id);
    case "retry":
      return d.retryNow({ id }).then((n) => n > 0);
    case "hold":
      return d.freeze({ id }).then((n) => n > 0);
    case "release":
      return d.unfreeze({ id }).then((n) => n > 0);
    case "bounce":
      return d.bounce({ id }, bounceReply(reason)).then((n) => n > 0);
  }
}

/** Runs a bulk action over every message `target` selects (or counts them on a dry run). */
export async function runBulk(
  action: BulkAction,
  target: BulkTarget,
  ctx: ControlContext,
  reason?: string,
): Promise<BulkResult> {
  let matched = 0;
  let changed = 0;
  for await (const page of selectPages(ctx.store, target.bulk, { now: Date.now(), pageSize: BULK_PAGE })) {
    matched += page.length;
    if (target.dryRun) continue;
    const done = await Promise.all(page.map((id) => actOn(action, id, ctx, reason).catch(() => false)));
    changed += done.filter(Boolean).length;
  }
  return { action, matched, changed, dryRun: target.dryRun };
}
