/**
 * The end of the line for queue records, shared by attempts and operator actions:
 * delivery events (errors logged, never fatal) and `finish`, which reports a
 * message whose recipients are all final and removes its state, then its data.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { newQueueRecord } from "../queue/submit.ts";
 * import { createLifecycle } from "./lifecycle.ts"; // @ts-ignore deno#26900
 *
 * const deleted: string[] = [];
 * const store = { delete: (id: string) => Promise.resolve(void deleted.push(id)) };
 * const spool = { delete: (_id: string) => Promise.resolve() };
 * const finished: string[] = [];
 * const life = createLifecycle({ store, spool, log: getLogger(["empath"]), events: { finished: (r) => void finished.push(r.id) } });
 * const envelope = { sender: "", recipients: [{ address: "a@example.com" }], client: { address: "127.0.0.1", listener: "mx" } };
 * const record = newQueueRecord({ id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R", size: 20 }, envelope, 0);
 * await life.finish(record); // record and data removed, then "finished" announced
 * assert.deepEqual(deleted, [record.id]);
 * assert.deepEqual(finished, [record.id]);
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { AttemptRecord, QueueRecord, QueueStore } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";

/** Events for modules, metrics and DSNs. Awaited, but errors are logged, never fatal. */
export interface DeliveryEvents {
  attempt?(record: QueueRecord, attempt: AttemptRecord): void | Promise<void>;
  /** Called once all recipients are final, before the record and data are removed. */
  finished?(record: QueueRecord): void | Promise<void>;
  /** Called when a message waits for a retry, before it is stored (may update it). */
  deferred?(record: QueueRecord): void | Promise<void>;
  /** Recipients skipped because they were delivered before (a retry after a crash or a re-queue). */
  deduplicated?(record: QueueRecord, recipients: string[]): void | Promise<void>;
  /** Recipients failed without an attempt: queue lifetime expired, or bounced by the operator. */
  failedWithoutAttempt?(record: QueueRecord, recipients: string[], reason: string): void | Promise<void>;
}

/** What the lifecycle needs. */
export interface LifecycleOptions {
  store: Pick<QueueStore, "delete">;
  spool: Pick<Spool, "delete">;
  log: Logger;
  events?: DeliveryEvents;
}

/** Event emission (never throws) and the final removal of a message. */
export interface Lifecycle {
  attempt(record: QueueRecord, attempt: AttemptRecord): Promise<void>;
  deferred(record: QueueRecord): Promise<void>;
  failedWithoutAttempt(record: QueueRecord, recipients: string[], reason: string): Promise<void>;
  deduplicated(record: QueueRecord, recipients: string[]): Promise<void>;
  /** All recipients final: emits `finished`, then drops state first and data second. */
  finish(record: QueueRecord): Promise<void>;
}

/** Creates the lifecycle helpers. */
export function createLifecycle(options: LifecycleOptions): Lifecycle {
  const { store, spool, log, events } = options;

  async function guarded(id: string, call: () => void | Promise<void> | undefined) {
    try {
      await call();
    } catch (err) {
      log.error("delivery event handler failed for {id}: {error}", { id, error: (err as Error).message });
    }
  }

  return {
    attempt: (record, attempt) => guarded(record.id, () => events?.attempt?.(record, attempt)),
    deferred: (record) => guarded(record.id, () => events?.deferred?.(record)),
    deduplicated: (record, recipients) => guarded(record.id, () => events?.deduplicated?.(record, recipients)),
    failedWithoutAttempt: (record, recipients, reason) =>
      guarded(record.id, () => events?.failedWithoutAttempt?.(record, recipients, reason)),
    async finish(record) {
      await guarded(record.id, () => events?.finished?.(record));
      log.debug("{id} {status}: {summary}", {
        id: record.id,
        status: record.status,
        summary: record.recipients.map((r) => `${r.address}=${r.status}`).join(" "),
      });
      // State first: if we crash or the unlink fails, the data is an orphan that can never be
      // delivered again; recovery and the periodic sweep remove it.
      // Lazy: the removal shares the next commit (a received message's, usually) instead of costing its
      // own fsync; the delivered recipients are in the marks already.
      await store.delete(record.id, { lazy: true });
      await spool.delete(record.id).catch((err) => {
        log.warning("could not remove spool data of {id} (will retry in the orphan sweep): {error}", {
          id: record.id,
          error: (err as Error).message,
        });
      });
    },
  };
}
