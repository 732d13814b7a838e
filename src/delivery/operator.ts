/**
 * Operator actions on queued messages: retry now, freeze and unfreeze, bounce,
 * delete, and suspending a destination. Many messages are read from the store in
 * pages and each page's changes are written concurrently, so the store can
 * group-commit them (one KV commit or one directory sync per batch instead of one
 * per message), memory stays at one page however large the queue, and delivery
 * starts after the first batch while the rest is still being written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { openKvStore } from "../queue/kv_store.ts";
 * import { createSubmitter } from "../queue/submit.ts";
 * import { openSpool } from "../spool/store.ts";
 * import { createLifecycle } from "./lifecycle.ts";
 * import { DestinationLimits } from "./limits.ts";
 * import { createOperator } from "./operator.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const [store, spool, log] = [await openKvStore(`${dir}/queue.kv`), await openSpool(`${dir}/spool`), getLogger(["empath"])];
 * const envelope = { sender: "", recipients: [{ address: "bob@example.com" }], client: { address: "127.0.0.1", listener: "mx" } };
 * const { id } = await createSubmitter({ store, spool }).submit({ data: new TextEncoder().encode("Subject: hi\r\n\r\n"), envelope });
 * const ops = createOperator({
 *   store,
 *   spool,
 *   log,
 *   lifecycle: createLifecycle({ store, spool, log }),
 *   scheduler: { schedule: () => {}, running: () => undefined },
 *   limits: new DestinationLimits(() => ({ maxConnections: 5, failures: 5, cooldownMs: 60_000 })),
 * });
 * assert.equal(await ops.retryNow({ domain: "example.com" }), 1);
 * assert.equal(await ops.bounce({ id }, "5.0.0 Returned by the administrator"), 1);
 * assert.equal(await store.get(id), null);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Priority, QueueRecord, QueueStore } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { Lifecycle } from "./lifecycle.ts";
import type { DestinationLimits } from "./limits.ts";
import { applyOutcomes, pendingRecipients, settle } from "./outcome.ts";
import type { Scheduler } from "./scheduler.ts";

/** Which messages an action applies to: one id, one recipient domain, or all. */
export interface MessageFilter {
  id?: string;
  domain?: string;
  all?: boolean;
}

/** What the operator actions need. */
export interface OperatorOptions {
  store: Pick<QueueStore, "get" | "put" | "delete" | "list">;
  spool: Pick<Spool, "delete">;
  log: Logger;
  lifecycle: Lifecycle;
  scheduler: Pick<Scheduler, "schedule" | "running">;
  limits: DestinationLimits;
  clock?: Clock;
}

/** The operator actions. Each returns how many messages it changed. */
export interface Operator {
  /** Makes messages due now. */
  retryNow(filter: MessageFilter): Promise<number>;
  freeze(filter: MessageFilter): Promise<number>;
  unfreeze(filter: MessageFilter): Promise<number>;
  /** Fails every pending recipient now (a failure DSN goes to the sender). */
  bounce(filter: MessageFilter, reason?: string): Promise<number>;
  /** Removes a message (state and data). False when it does not exist. */
  deleteMessage(id: string): Promise<boolean>;
  /** Sets the priority of waiting or frozen messages (`queue set-priority`). */
  setPriority(filter: MessageFilter, priority: Priority): Promise<number>;
  /** Holds delivery to a domain until `until` (epoch ms); 0 lifts the hold and rescans. */
  suspend(domain: string, until: number): void;
  /**
   * Makes a domain's waiting mail due now when its next attempt lies after now but at or
   * before `heldUntil`: what a suspension or rate limit held (the hold's end became the next
   * attempt). Mail whose retry backoff ends later keeps its time. Returns how many.
   */
  releaseHeld(domain: string, heldUntil: number): Promise<number>;
}

/** Records written at once by retry/freeze/unfreeze of many messages. */
const OPERATOR_BATCH = 256;

const DEFAULT_BOUNCE_REASON = "5.0.0 Returned to the sender by the mail system administrator";

/** Creates the operator actions. */
export function createOperator(options: OperatorOptions): Operator {
  const { store, spool, log, lifecycle, scheduler } = options;
  const clock = options.clock ?? systemClock;
  const waiting = (r: QueueRecord) => r.status === "queued" || r.status === "deferred";

  /**
   * The selected records in pages of {@link OPERATOR_BATCH}, read lazily from the store: at
   * most one page is decoded at a time, never the whole queue (100,000 records would be
   * hundreds of MB of objects).
   */
  async function* pages(filter: MessageFilter): AsyncGenerator<QueueRecord[]> {
    if (filter.id) {
      const r = await store.get(filter.id);
      if (r) yield [r];
      return;
    }
    if (!filter.domain && !filter.all) return;
    let page: QueueRecord[] = [];
    for await (const r of store.list({ domain: filter.domain })) {
      page.push(r);
      if (page.length >= OPERATOR_BATCH) {
        yield page;
        page = [];
      }
    }
    if (page.length) yield page;
  }

  /**
   * Changes the selected records that `pick` accepts, one page at a time, each page's
   * writes concurrent (one group commit); `afterFirst` runs once the first change is stored.
   */
  async function update(
    filter: MessageFilter,
    pick: (r: QueueRecord) => boolean,
    change: (r: QueueRecord) => void,
    afterFirst?: () => void,
  ): Promise<number> {
    let n = 0;
    for await (const page of pages(filter)) {
      const changed = page.filter(pick);
      if (changed.length === 0) continue;
      for (const record of changed) change(record);
      await Promise.all(changed.map((r) => store.put(r)));
      if (n === 0) afterFirst?.();
      n += changed.length;
    }
    return n;
  }

  const scanNow = () => scheduler.schedule(0);

  return {
    async retryNow(filter) {
      const now = clock.now();
      const n = await update(filter, waiting, (record) => record.nextAttemptAt = now, scanNow);
      scanNow();
      return n;
    },
    freeze(filter) {
      return update(filter, waiting, (record) => {
        record.frozenFrom = record.status;
        record.status = "frozen";
      });
    },
    async unfreeze(filter) {
      const now = clock.now();
      const n = await update(filter, (r) => r.status === "frozen", (record) => {
        record.status = record.frozenFrom ?? "queued";
        record.frozenFrom = undefined;
        record.nextAttemptAt = now;
      }, scanNow);
      scanNow();
      return n;
    },
    async bounce(filter, reason = DEFAULT_BOUNCE_REASON) {
      const replyCode = /^[45]\d\d(?= )/.exec(reason) ? Number(reason.slice(0, 3)) : undefined;
      let n = 0;
      // One page at a time; each message is read again once a delivery in flight has finished.
      for await (const page of pages(filter)) {
        for (const { id } of page) {
          await scheduler.running(id);
          const record = await store.get(id);
          if (!record) continue;
          const pending = pendingRecipients(record);
          if (pending.length === 0) continue;
          const now = clock.now();
          applyOutcomes(
            record,
            // A reason given as a full reply ("550 5.0.0 ...") keeps its code, so the DSN shows it as the diagnostic.
            pending.map((r) => ({ address: r.address, outcome: "failed" as const, reply: reason, code: replyCode })),
            undefined,
            now,
          );
          await lifecycle.failedWithoutAttempt(record, pending.map((r) => r.address), "bounced by operator");
          settle(record, now, now);
          log.info("{id} bounced by the operator ({n} recipients)", { id: record.id, n: pending.length });
          await lifecycle.finish(record);
          n++;
        }
      }
      return n;
    },
    async deleteMessage(id) {
      await scheduler.running(id);
      const record = await store.get(id);
      if (!record) return false;
      await store.delete(id);
      await spool.delete(id);
      return true;
    },
    async releaseHeld(domain, heldUntil) {
      const now = clock.now();
      const held = (r: QueueRecord) => waiting(r) && r.nextAttemptAt > now && r.nextAttemptAt <= heldUntil;
      const n = await update({ domain }, held, (record) => record.nextAttemptAt = now, scanNow);
      scanNow();
      return n;
    },
    setPriority(filter, priority) {
      // The next due scan claims by the new level.
      return update(filter, (r) => waiting(r) || r.status === "frozen", (record) => {
        if (priority === "normal") delete record.priority;
        else record.priority = priority;
      });
    },
    suspend(domain, until) {
      options.limits.suspend(domain, until);
      if (until <= clock.now()) scanNow();
    },
  };
}
