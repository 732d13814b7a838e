/**
 * The QueueStore interface: one contract for the Deno KV and the file backends,
 * checked by one shared test suite (tests/queue/store_contract.ts).
 * @module
 */
import type { MessageStatus, Priority, QueueFilter, QueueRecord } from "./types.ts";
import type { QueueStats } from "./index_cache.ts";

/** What {@link QueueStore.claim} takes. */
export interface ClaimOptions {
  /** Epoch ms: records due at or before it are claimable; leases run from it. */
  now: number;
  /** At most this many records. */
  limit: number;
  /** Who takes the leases (a node or worker id). */
  owner: string;
  /** A lease lasts until `now + leaseMs` unless renewed or released. */
  leaseMs: number;
  /** Only records of this level (absent priority counts as "normal"); default every level. */
  priority?: Priority;
}

/**
 * One recipient the next hop accepted (answered 250), remembered so that no retry, restart or
 * operator re-queue sends the message to it again. SQL: a table keyed (id, recipient) with `at`.
 */
export interface DeliveryMark {
  /** Queue id of the message. */
  id: string;
  recipient: string;
  /** Epoch ms of the 250. */
  at: number;
}

/**
 * One delivery event waiting to be pushed to a webhook subscriber. SQL: a table keyed by `id`
 * (a ULID, so ids sort by time) with `target`, `at` and the JSON `body`.
 */
export interface OutboxEntry {
  /** ULID: sorts oldest first. */
  id: string;
  /** The subscription (webhook) it is for. */
  target: string;
  /** Epoch ms the event happened. */
  at: number;
  /** The event as a JSON document. */
  body: string;
}

/** A JSON value kept under a key by {@link QueueStore.putState}. */
export type StateValue = string | number | boolean | null | StateValue[] | { [key: string]: StateValue };

/** One entry of {@link QueueStore.listState}. */
export interface StateEntry {
  key: string;
  value: StateValue;
  /** Epoch ms after which the entry is gone; absent = kept until deleted. */
  expiresAt?: number;
}

/**
 * Persistent queue state. All writes are durable when their promise resolves.
 *
 * Leases (claim/renew/release) let several workers or nodes share one queue: a
 * record under a live lease (`now < until`) is not claimed again by anyone, an
 * expired lease is claimable again. A lease is separate from the record: `put`
 * keeps it, `delete` ends it. Local backends keep leases in memory (one process
 * owns the store), so they end with the process.
 */
/** The longest a lazy write waits for a commit to share (see {@link QueueStore.delete}). */
export const LAZY_WRITE_MS = 20;

export interface QueueStore {
  readonly backend: "kv" | "file" | "postgres";
  /** Creates or replaces a record (atomic; due index kept in step). */
  put(record: QueueRecord): Promise<void>;
  /** The record, or null when there is none. */
  get(id: string): Promise<QueueRecord | null>;
  /**
   * Removes a record (and its lease); a missing record is not an error. With `lazy`, the removal
   * may wait a little (at most {@link LAZY_WRITE_MS}) to share a commit with other writes instead
   * of costing one of its own; it is durable when the promise resolves either way. For finished
   * messages, whose delivery the marks already remember.
   */
  delete(id: string, options?: { lazy?: boolean }): Promise<void>;
  /** Scheduled records (queued/deferred) with nextAttemptAt <= now, earliest first. */
  due(now: number, limit: number, priority?: Priority): Promise<QueueRecord[]>;
  /**
   * Leases due scheduled records (as {@link due}, earliest first) to `owner` until
   * `now + leaseMs`, skipping records under anyone's live lease, the caller's included.
   */
  claim(options: ClaimOptions): Promise<QueueRecord[]>;
  /** Extends `owner`'s live leases on `ids` to `now + leaseMs`; returns the ids still held. */
  renew(ids: string[], owner: string, leaseMs: number, now: number): Promise<string[]>;
  /** Ends `owner`'s leases on `ids`; leases held by others are left alone. */
  release(ids: string[], owner: string): Promise<void>;
  /** Earliest nextAttemptAt among scheduled records, or null. */
  nextDueAt(): Promise<number | null>;
  list(filter?: QueueFilter): AsyncIterable<QueueRecord>;
  counts(): Promise<Record<MessageStatus, number>>;
  /** Counts by status and domain and the oldest message, from memory (fast at 100k messages). */
  stats(): Promise<QueueStats>;
  /**
   * Small durable operator state (global freeze, suspensions, runtime overrides, lockouts) as
   * JSON values under string keys, outside the message records. An entry with `expiresAt`
   * (epoch ms) is gone once `Date.now() >= expiresAt`: reads skip it, the store may drop it.
   * SQL shape: `state(key text primary key, value json, expires_at bigint null)`.
   */
  getState(key: string): Promise<StateValue | null>;
  /** Creates or replaces `key` (durable when the promise resolves). */
  putState(key: string, value: StateValue, expiresAt?: number): Promise<void>;
  /** Live entries whose key starts with `prefix`, in key order. */
  listState(prefix: string): Promise<StateEntry[]>;
  /** Removes `key`; a missing key is not an error. */
  deleteState(key: string): Promise<void>;
  /** Durably remembers delivered recipients (group-committed with concurrent writes). */
  markDelivered(marks: DeliveryMark[]): Promise<void>;
  /** The recipients of message `id` remembered as delivered. */
  deliveredOf(id: string): Promise<string[]>;
  /**
   * Forgets marks older than `before` (epoch ms) and, beyond that, the oldest ones above `keep`;
   * returns how many were removed.
   */
  pruneDelivered(before: number, keep: number): Promise<number>;
  /** Durably adds events to the outbox. */
  outboxAdd(entries: OutboxEntry[]): Promise<void>;
  /** Up to `limit` outbox entries for `target`, oldest first. */
  outboxPeek(target: string, limit: number): Promise<OutboxEntry[]>;
  /** Removes outbox entries (sent); unknown ids are ignored. */
  outboxRemove(ids: string[]): Promise<void>;
  /** Entries in the outbox and the oldest one's `at` (null when empty), from memory. */
  outboxStats(): Promise<{ depth: number; oldestAt: number | null }>;
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
  if (filter.priority && (record.priority ?? "normal") !== filter.priority) return false;
  if (filter.domain) {
    const d = filter.domain.toLowerCase();
    return record.recipients.some((r) => r.address.toLowerCase().endsWith(`@${d}`));
  }
  return true;
}
