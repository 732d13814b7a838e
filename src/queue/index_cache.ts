/**
 * In-memory index of the queue (status and due time per id), shared by both
 * backends: counts by status without a scan, and the previous due time of a
 * record so its index entry can be replaced without a read. With `ordered`, it also
 * keeps the scheduled records in a {@link DueHeap}, so the earliest due ones are
 * found without scanning the index (the file backend; KV has its `due` keys).
 * About 100 bytes per message: 100,000 queued messages cost ~10 MB (+~40 bytes ordered).
 * @module
 */
import { DueHeap } from "./due_heap.ts";
import { emptyCounts } from "./store.ts";
import { type MessageStatus, type Priority, type QueueRecord, SCHEDULED_STATUSES } from "./types.ts";

/** What the index keeps per message. */
export interface IndexEntry {
  status: MessageStatus;
  due: number;
  /** Backend-specific extra (KV: number of value chunks). */
  parts: number;
  receivedAt: number;
  /** Domains of the recipients still waiting (lower case). */
  domains: string[];
  priority: Priority;
}

/** Queue totals without reading records (`queue stats`). */
export interface QueueStats {
  counts: Record<MessageStatus, number>;
  /** receivedAt of the oldest message, or null when the queue is empty. */
  oldestReceivedAt: number | null;
  /** Per destination domain: messages waiting for it and the oldest one's receivedAt. */
  domains: Record<string, { messages: number; oldestReceivedAt: number }>;
  /** Messages per priority level. */
  priorities: Record<Priority, number>;
}

const FINAL = new Set(["delivered", "failed", "relayed", "expanded"]);

/** Options of {@link QueueIndex}. */
export interface QueueIndexOptions {
  /** Keep scheduled records ordered by due time (dueIds/nextDueAt in O(k log n), not O(n)). */
  ordered?: boolean;
}

/** Status/due index with live counts. */
export class QueueIndex {
  readonly entries = new Map<string, IndexEntry>();
  readonly #counts = emptyCounts();
  readonly #heap: DueHeap | undefined;
  readonly #isCurrent = (due: number, id: string) => {
    const e = this.entries.get(id);
    return e !== undefined && e.due === due && isScheduled(e.status);
  };

  constructor(options: QueueIndexOptions = {}) {
    if (options.ordered) this.#heap = new DueHeap();
  }

  /** Work done by the ordered index so far (heap comparisons); 0 when not ordered. */
  get orderWork(): number {
    return this.#heap?.work ?? 0;
  }

  /** Pairs in the ordered index, stale ones included; 0 when not ordered. */
  get orderSize(): number {
    return this.#heap?.size ?? 0;
  }

  get(id: string): IndexEntry | undefined {
    return this.entries.get(id);
  }

  set(record: QueueRecord, parts = 1): IndexEntry | undefined {
    const prev = this.entries.get(record.id);
    if (prev) this.#counts[prev.status]--;
    const domains = new Set<string>();
    for (const r of record.recipients) {
      if (!FINAL.has(r.status)) domains.add(r.address.slice(r.address.lastIndexOf("@") + 1).toLowerCase());
    }
    this.entries.set(record.id, {
      status: record.status,
      due: record.nextAttemptAt,
      parts,
      receivedAt: record.receivedAt,
      domains: [...domains],
      priority: record.priority ?? "normal",
    });
    this.#counts[record.status]++;
    if (this.#heap && isScheduled(record.status)) {
      // A pair is pushed only when the due time changes; the old pair goes stale.
      if (!prev || prev.due !== record.nextAttemptAt || !isScheduled(prev.status)) {
        this.#heap.push(record.nextAttemptAt, record.id);
        this.#compact();
      }
    }
    return prev;
  }

  delete(id: string): IndexEntry | undefined {
    const prev = this.entries.get(id);
    if (prev) {
      this.#counts[prev.status]--;
      this.entries.delete(id);
    }
    return prev;
  }

  counts(): Record<MessageStatus, number> {
    return { ...this.#counts };
  }

  /** Counts by status and by domain, and the oldest message (one pass over memory). */
  stats(): QueueStats {
    const domains: QueueStats["domains"] = {};
    let oldest: number | null = null;
    const priorities: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 };
    for (const e of this.entries.values()) {
      priorities[e.priority]++;
      if (oldest === null || e.receivedAt < oldest) oldest = e.receivedAt;
      for (const d of e.domains) {
        const s = domains[d] ??= { messages: 0, oldestReceivedAt: e.receivedAt };
        s.messages++;
        if (e.receivedAt < s.oldestReceivedAt) s.oldestReceivedAt = e.receivedAt;
      }
    }
    return { counts: this.counts(), oldestReceivedAt: oldest, domains, priorities };
  }

  /**
   * Up to `limit` scheduled ids due by `now` (of one level if given), earliest first, without those
   * `skip` names: from the heap when there is one (O((k + skipped) log n)); else a linear scan that
   * keeps only the `limit` earliest (no sort of every due entry: a backlog of 10^5 must not stall the
   * event loop while replies wait to be read).
   */
  dueIds(now: number, limit: number, priority?: Priority, skip?: (id: string) => boolean): string[] {
    const pass = priority ? (id: string) => this.entries.get(id)?.priority !== priority || !!skip?.(id) : skip;
    if (this.#heap) return this.#heap.take(now, limit, this.#isCurrent, pass);
    if (limit <= 0) return [];
    if (limit > 1024) return this.#allDue(now, pass).slice(0, limit); // counting callers: a plain sort
    const top: [number, string][] = [];
    const before = (a: [number, string], b: [number, string]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
    for (const [id, e] of this.entries) {
      if (e.due > now || !isScheduled(e.status) || pass?.(id)) continue;
      const item: [number, string] = [e.due, id];
      const last = top[top.length - 1];
      if (top.length >= limit && last && !before(item, last)) continue;
      let lo = 0;
      let hi = top.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (before(top[mid]!, item)) lo = mid + 1;
        else hi = mid;
      }
      top.splice(lo, 0, item);
      if (top.length > limit) top.pop();
    }
    return top.map(([, id]) => id);
  }

  #allDue(now: number, pass?: (id: string) => boolean): string[] {
    const due: [number, string][] = [];
    for (const [id, e] of this.entries) {
      if (e.due <= now && isScheduled(e.status) && !pass?.(id)) due.push([e.due, id]);
    }
    return due.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1)).map(([, id]) => id);
  }

  /** Earliest due time of a scheduled record, or null. */
  nextDueAt(): number | null {
    if (this.#heap) return this.#heap.peek(this.#isCurrent);
    let min: number | null = null;
    for (const e of this.entries.values()) {
      if (isScheduled(e.status) && (min === null || e.due < min)) min = e.due;
    }
    return min;
  }

  /** Rebuilds the heap from the index when stale pairs outnumber current ones (amortised O(1)). */
  #compact(): void {
    const heap = this.#heap!;
    const scheduled = this.#counts.queued + this.#counts.deferred;
    if (heap.size <= 2 * scheduled + 1024) return;
    const pairs: [number, string][] = [];
    for (const [id, e] of this.entries) if (isScheduled(e.status)) pairs.push([e.due, id]);
    heap.rebuild(pairs);
  }
}

/** True for statuses that wait in the schedule. */
export function isScheduled(status: MessageStatus): boolean {
  return SCHEDULED_STATUSES.includes(status);
}
