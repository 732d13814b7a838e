/**
 * The QueueStore interface: one contract for the Deno KV and the file backends,
 * checked by one shared test suite (tests/queue/store_contract.ts).
 * @module
 */
import type { MessageStatus, QueueFilter, QueueRecord } from "./types.ts";
import type { QueueStats } from "./index_cache.ts";

/** Persistent queue state. All writes are durable when their promise resolves. */
export interface QueueStore {
  readonly backend: "kv" | "file";
  /** Creates or replaces a record (atomic; due index kept in step). */
  put(record: QueueRecord): Promise<void>;
  get(id: string): Promise<QueueRecord | null>;
  delete(id: string): Promise<void>;
  /** Scheduled records (queued/deferred) with nextAttemptAt <= now, earliest first. */
  due(now: number, limit: number): Promise<QueueRecord[]>;
  /** Earliest nextAttemptAt among scheduled records, or null. */
  nextDueAt(): Promise<number | null>;
  list(filter?: QueueFilter): AsyncIterable<QueueRecord>;
  counts(): Promise<Record<MessageStatus, number>>;
  /** Counts by status and domain and the oldest message, from memory (fast at 100k messages). */
  stats(): Promise<QueueStats>;
  /** Fails when the store cannot be used (health check). */
  probe(): Promise<void>;
  close(): Promise<void>;
}

/** Queue store failures. */
export class QueueStoreError extends Error {
  constructor(message: string, readonly code: "QUEUE_IO" | "QUEUE_CORRUPT" | "QUEUE_CLOSED", options?: ErrorOptions) {
    super(message, options);
    this.name = "QueueStoreError";
  }
}

/** A zeroed counts object. */
export function emptyCounts(): Record<MessageStatus, number> {
  return { queued: 0, delivering: 0, deferred: 0, frozen: 0, delivered: 0, failed: 0 };
}

/** True when a record matches a list filter (domain matches any recipient's domain). */
export function matchesFilter(record: QueueRecord, filter: QueueFilter): boolean {
  if (filter.status && record.status !== filter.status) return false;
  if (filter.domain) {
    const d = filter.domain.toLowerCase();
    return record.recipients.some((r) => r.address.toLowerCase().endsWith(`@${d}`));
  }
  return true;
}
