/**
 * Start-up recovery after a crash or restart:
 * - partial spool writes (tmp files) are removed — they were never acknowledged;
 * - spool data without a queue record (crash between data commit and state write,
 *   before 250 was sent) is removed;
 * - records caught "delivering" are queued again;
 * - records whose data is missing are marked failed and reported loudly. (The
 *   record of a small message is written while its data is synced, so after a
 *   power loss this is also how a message whose 250 was never sent looks: its
 *   sender still holds it and sends it again.)
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Spool } from "../spool/mod.ts";
import type { QueueStore } from "./store.ts";

/** What recovery found. */
export interface RecoveryReport {
  partialRemoved: number;
  orphansRemoved: number;
  requeued: number;
  missingData: number;
  total: number;
}

/** Reconciles spool and queue store; call before listeners start. */
export async function recoverQueue(spool: Spool, store: QueueStore, log: Logger): Promise<RecoveryReport> {
  const report: RecoveryReport = { partialRemoved: 0, orphansRemoved: 0, requeued: 0, missingData: 0, total: 0 };
  const partial = await spool.cleanTemp();
  report.partialRemoved = partial.length;
  for (const id of partial) log.warning("recovery: removed partial spool write {id} (never acknowledged)", { id });

  const dataIds = new Set<string>();
  for await (const id of spool.list()) dataIds.add(id);
  const now = Date.now();
  for await (const record of store.list()) {
    report.total++;
    const hasData = dataIds.delete(record.id);
    const finished = record.status === "delivered" || record.status === "failed";
    if (!hasData && !finished) {
      report.missingData++;
      log.error(
        "recovery: message {id} has queue state but no spool data (lost, or a power loss before its 250 was sent); marking failed",
        { id: record.id },
      );
      for (const r of record.recipients) {
        if (r.status === "pending" || r.status === "deferred") {
          r.status = "failed";
          r.lastReply = "451 4.3.0 spool data missing after restart";
        }
      }
      record.status = "failed";
      record.updatedAt = now;
      await store.put(record);
      continue;
    }
    if (record.status === "delivering") {
      record.status = "queued";
      record.nextAttemptAt = Math.min(record.nextAttemptAt, now);
      record.updatedAt = now;
      await store.put(record);
      report.requeued++;
    }
  }
  for (const id of dataIds) {
    await spool.delete(id);
    report.orphansRemoved++;
    log.warning("recovery: removed spool data {id} without queue state (never acknowledged)", { id });
  }
  return report;
}
