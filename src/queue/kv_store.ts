/**
 * QueueStore on Deno KV (local SQLite file or a remote KV URL).
 *
 * Keys:
 * - `["msg", id]` → `{ json }` or `{ parts: n }` for records over 60 KB (KV values max 64 KiB),
 *   with `["part", id, i]` → string chunks.
 * - `["due", nextAttemptAt, id]` → `true` for scheduled (queued/deferred) records, so due
 *   messages are read in time order by a range scan, never a full scan.
 * - `["state", key]` → `{ value, expiresAt? }`: operator state ({@link QueueStore.putState}).
 *
 * - `["dlv", id, recipient]` → epoch ms: delivery marks (see {@link QueueStore.markDelivered}) on a
 *   remote KV; on a local path they go to `<path>.delivered.log` instead (marks_log.ts: one write(2)
 *   at once, so a mark survives the death of the process microseconds after it is made).
 * - `["outbox", eventId]` → `{ target, at, body }`: the delivery-event outbox.
 *
 * Concurrent puts (and marks and outbox writes) are group-committed: while one atomic commit is in flight, new puts
 * collect and go out together in the next one (bounded by KV's per-commit limits). A lazy delete (a finished
 * message) starts no commit of its own for up to `LAZY_WRITE_MS`: it rides along with the next one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newQueueRecord } from "./submit.ts";
 * import { openKvStore } from "./kv_store.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const store = await openKvStore(`${dir}/queue.kv`);
 * const envelope = { sender: "", recipients: [{ address: "bob@example.net" }], client: { address: "127.0.0.1", listener: "mx" } };
 * await store.put(newQueueRecord({ id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R", size: 20 }, envelope, 1000));
 * const due = await store.due(Date.now(), 100);
 * assert.equal(due.length, 1);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { isScheduled, QueueIndex } from "./index_cache.ts";
import { createLeaseTable } from "./leases.ts";
import { openMarksLog } from "./marks_log.ts";
import { DeliveredIndex, OutboxIndex } from "./side_tables.ts";
import {
  type DeliveryMark,
  LAZY_WRITE_MS,
  matchesFilter,
  type OutboxEntry,
  type QueueStore,
  QueueStoreError,
  type StateEntry,
  type StateValue,
} from "./store.ts";
import type { Priority, QueueFilter, QueueRecord } from "./types.ts";

const CHUNK = 60_000;
const MAX_BATCH_MUTATIONS = 900;
const MAX_BATCH_BYTES = 700_000;

interface Pending {
  kind: "put" | "delete" | "side";
  id: string;
  /** What the index needs, copied at put time (the caller may change the record afterwards). */
  record?: QueueRecord;
  /** The record as stored, serialised once at put time. */
  json?: string;
  /** A side-table write ("side"): its mutations, estimated size, and the index update after commit. */
  side?: { mutate(op: Deno.AtomicOperation): void; mutations: number; bytes: number; applied(): void };
  resolve: () => void;
  reject: (err: Error) => void;
}

type Stored = { json: string } | { parts: number };
type StoredState = { value: StateValue; expiresAt?: number };
const live = (s: StoredState | null, now: number): s is StoredState =>
  s !== null && (s.expiresAt === undefined || s.expiresAt > now);

/** The fields the index reads, copied (cheaper than a deep clone of the whole record). */
function indexView(r: QueueRecord): QueueRecord {
  return {
    id: r.id,
    status: r.status,
    nextAttemptAt: r.nextAttemptAt,
    receivedAt: r.receivedAt,
    recipients: r.recipients.map((x) => ({ address: x.address, status: x.status })),
    priority: r.priority,
  } as QueueRecord;
}

/** Opens the KV queue store and loads its index. */
export async function openKvStore(path: string): Promise<QueueStore> {
  let kv: Deno.Kv;
  try {
    kv = await Deno.openKv(path);
  } catch (err) {
    throw new QueueStoreError(`cannot open Deno KV at ${path}: ${(err as Error).message}`, "QUEUE_IO", { cause: err });
  }
  const index = new QueueIndex();
  const leases = createLeaseTable();
  const local = path !== ":memory:" && !/^https?:\/\//.test(path);
  const marksLog = local ? await openMarksLog(`${path}.delivered.log`, true) : undefined;
  const marks = new DeliveredIndex();
  const outbox = new OutboxIndex();
  let closed = false;
  let sideSeq = 0;

  async function decode(id: string, stored: Stored): Promise<QueueRecord> {
    if ("json" in stored) return JSON.parse(stored.json);
    const keys = Array.from({ length: stored.parts }, (_, i) => ["part", id, i]);
    const chunks: string[] = [];
    for (let i = 0; i < keys.length; i += 10) {
      for (const entry of await kv.getMany<string[]>(keys.slice(i, i + 10))) {
        if (entry.value === null) {
          throw new QueueStoreError(`record ${id} is missing part ${String(entry.key[2])}`, "QUEUE_CORRUPT");
        }
        chunks.push(entry.value);
      }
    }
    return JSON.parse(chunks.join(""));
  }

  for await (const entry of kv.list<Stored>({ prefix: ["msg"] })) {
    const id = entry.key[1] as string;
    try {
      const record = await decode(id, entry.value);
      index.set(record, "parts" in entry.value ? entry.value.parts : 0);
    } catch (err) {
      console.error(`queue: skipping unreadable record ${id}: ${(err as Error).message}`);
    }
  }

  for await (const entry of kv.list<number>({ prefix: ["dlv"] })) {
    marks.add({ id: entry.key[1] as string, recipient: entry.key[2] as string, at: entry.value });
  }
  for await (const entry of kv.list<Omit<OutboxEntry, "id">>({ prefix: ["outbox"] })) {
    outbox.add({ id: entry.key[1] as string, ...entry.value });
  }

  // Group commit.
  const queue: Pending[] = [];
  let flushing: Promise<void> | null = null;
  // Invariant: `flushing` is non-null exactly while flush() may still look at `queue`. flush()
  // clears it itself in the same synchronous step that finds the queue empty, so a put that
  // arrives right after can never be stranded.

  function addMutations(op: Deno.AtomicOperation, p: Pending): { mutations: number; bytes: number } {
    if (p.side) {
      p.side.mutate(op);
      return { mutations: p.side.mutations, bytes: p.side.bytes };
    }
    const prev = index.get(p.id);
    let mutations = 0;
    let bytes = 0;
    if (prev && isScheduled(prev.status)) {
      op.delete(["due", prev.due, p.id]);
      mutations++;
    }
    const oldParts = prev?.parts ?? 0;
    if (p.kind === "delete") {
      op.delete(["msg", p.id]);
      for (let i = 0; i < oldParts; i++) op.delete(["part", p.id, i]);
      return { mutations: mutations + 1 + oldParts, bytes: 64 };
    }
    const record = p.record!;
    const json = p.json!;
    bytes += json.length;
    if (json.length <= CHUNK) {
      op.set(["msg", p.id], { json });
      mutations++;
      for (let i = 0; i < oldParts; i++) op.delete(["part", p.id, i]);
      mutations += oldParts;
    } else {
      const parts = Math.ceil(json.length / CHUNK);
      for (let i = 0; i < parts; i++) op.set(["part", p.id, i], json.slice(i * CHUNK, (i + 1) * CHUNK));
      for (let i = parts; i < oldParts; i++) op.delete(["part", p.id, i]);
      op.set(["msg", p.id], { parts });
      mutations += parts + Math.max(0, oldParts - parts) + 1;
    }
    if (isScheduled(record.status)) {
      op.set(["due", record.nextAttemptAt, p.id], true);
      mutations++;
    }
    return { mutations, bytes };
  }

  function applyToIndex(p: Pending) {
    if (p.side) p.side.applied();
    else if (p.kind === "delete") {
      index.delete(p.id);
      leases.forget(p.id);
    } else index.set(p.record!, p.json!.length <= CHUNK ? 0 : Math.ceil(p.json!.length / CHUNK));
  }

  async function commitBatch(batch: Pending[]): Promise<void> {
    const op = kv.atomic();
    for (const p of batch) addMutations(op, p);
    const res = await op.commit();
    if (!res.ok) throw new QueueStoreError("KV commit was rejected", "QUEUE_IO");
    for (const p of batch) applyToIndex(p);
  }

  async function flush(): Promise<void> {
    await Promise.resolve(); // let puts made in the same tick join the first batch
    try {
      while (queue.length > 0) {
        // Take as many as fit in one commit; the same id twice goes in separate batches.
        const batch: Pending[] = [];
        const ids = new Set<string>();
        let mutations = 0;
        let bytes = 0;
        for (let next = queue[0]; next && !ids.has(next.id); next = queue[0]) {
          const est = next.side?.bytes ?? (next.kind === "put" ? next.json!.length : 64);
          const estMut = next.side?.mutations ?? 3 + Math.ceil(est / CHUNK) + (index.get(next.id)?.parts ?? 0);
          if (batch.length > 0 && (mutations + estMut > MAX_BATCH_MUTATIONS || bytes + est > MAX_BATCH_BYTES)) break;
          const p = queue.shift()!;
          batch.push(p);
          ids.add(p.id);
          mutations += estMut;
          bytes += est;
        }
        try {
          await commitBatch(batch);
          for (const p of batch) p.resolve();
        } catch (err) {
          // Isolate the failure: retry one by one so one bad record does not fail the others.
          for (const p of batch) {
            try {
              await commitBatch([p]);
              p.resolve();
            } catch (e) {
              p.reject(
                new QueueStoreError(`KV write of ${p.id} failed: ${(e as Error).message}`, "QUEUE_IO", { cause: err }),
              );
            }
          }
        }
      }
    } finally {
      // Same synchronous step as the failed `queue.length > 0` check: no put can be stranded.
      flushing = null;
    }
  }

  // Lazy writes wait up to LAZY_WRITE_MS for a commit started by another write, or start one then.
  let lazyTimer: ReturnType<typeof setTimeout> | undefined;
  const startFlush = () => {
    clearTimeout(lazyTimer);
    lazyTimer = undefined;
    flushing ??= flush();
  };

  function enqueue(p: Omit<Pending, "resolve" | "reject">, lazy = false): Promise<void> {
    if (closed) return Promise.reject(new QueueStoreError("queue store is closed", "QUEUE_CLOSED"));
    return new Promise<void>((resolve, reject) => {
      queue.push({ ...p, resolve, reject });
      if (!lazy) startFlush();
      else if (!flushing && lazyTimer === undefined) lazyTimer = setTimeout(startFlush, LAZY_WRITE_MS);
    });
  }

  async function get(id: string): Promise<QueueRecord | null> {
    const entry = await kv.get<Stored>(["msg", id]);
    return entry.value === null ? null : await decode(id, entry.value);
  }

  /** Writes side-table mutations in chunks that fit one commit each (group-committed with puts). */
  function side(
    count: number,
    chunk: number,
    bytesOf: (i: number) => number,
    mutate: (op: Deno.AtomicOperation, i: number) => void,
    applied: (i: number) => void,
  ): Promise<void> {
    const writes: Promise<void>[] = [];
    for (let start = 0; start < count; start += chunk) {
      const end = Math.min(count, start + chunk);
      let bytes = 0;
      for (let i = start; i < end; i++) bytes += bytesOf(i);
      writes.push(enqueue({
        kind: "side",
        id: `\0side${sideSeq++}`,
        side: {
          mutations: end - start,
          bytes,
          mutate: (op) => {
            for (let i = start; i < end; i++) mutate(op, i);
          },
          applied: () => {
            for (let i = start; i < end; i++) applied(i);
          },
        },
      }));
    }
    return Promise.all(writes).then(() => {});
  }

  async function due(now: number, limit: number, priority?: Priority): Promise<QueueRecord[]> {
    const out: QueueRecord[] = [];
    const ids: string[] = [];
    if (priority) ids.push(...index.dueIds(now, limit, priority));
    else {
      const iter = kv.list<boolean>({ start: ["due"], end: ["due", now + 1] }, { limit });
      for await (const entry of iter) ids.push(entry.key[2] as string);
    }
    for (const record of await Promise.all(ids.map(get))) {
      if (record && isScheduled(record.status)) out.push(record);
    }
    return out;
  }

  function open(): void {
    if (closed) throw new QueueStoreError("queue store is closed", "QUEUE_CLOSED");
  }

  return {
    backend: "kv",
    async getState(key) {
      open();
      const entry = await kv.get<StoredState>(["state", key]);
      return live(entry.value, Date.now()) ? entry.value.value : null;
    },
    async putState(key, value, expiresAt) {
      open();
      const stored: StoredState = expiresAt === undefined ? { value } : { value, expiresAt };
      // KV's own expiry only cleans up (it is lazy); reads check expiresAt themselves.
      const expireIn = expiresAt === undefined ? undefined : Math.max(1, expiresAt - Date.now()) + 60_000;
      await kv.set(["state", key], stored, expireIn === undefined ? undefined : { expireIn });
    },
    async listState(prefix) {
      open();
      const now = Date.now();
      const out: StateEntry[] = [];
      for await (const entry of kv.list<StoredState>({ prefix: ["state"] })) {
        const key = entry.key[1] as string;
        if (!key.startsWith(prefix) || !live(entry.value, now)) continue;
        out.push({
          key,
          value: entry.value.value,
          ...(entry.value.expiresAt ? { expiresAt: entry.value.expiresAt } : {}),
        });
      }
      return out;
    },
    async deleteState(key) {
      open();
      await kv.delete(["state", key]);
    },
    put: (record) => enqueue({ kind: "put", id: record.id, record: indexView(record), json: JSON.stringify(record) }),
    delete: (id, options) => enqueue({ kind: "delete", id }, options?.lazy),
    get,
    due,
    claim: (options) => leases.claim(options, (now, limit) => due(now, limit, options.priority)),
    renew: (ids, owner, leaseMs, now) => Promise.resolve(leases.renew(ids, owner, leaseMs, now)),
    release: (ids, owner) => Promise.resolve(leases.release(ids, owner)),
    async nextDueAt() {
      for await (const entry of kv.list({ prefix: ["due"] }, { limit: 1 })) return entry.key[1] as number;
      return null;
    },
    async *list(filter: QueueFilter = {}) {
      let n = 0;
      for await (const entry of kv.list<Stored>({ prefix: ["msg"] })) {
        const record = await decode(entry.key[1] as string, entry.value);
        if (!matchesFilter(record, filter)) continue;
        yield record;
        if (filter.limit && ++n >= filter.limit) return;
      }
    },
    counts: () => Promise.resolve(index.counts()),
    stats: () => Promise.resolve(index.stats()),
    async probe() {
      await kv.get(["probe"]);
    },
    markDelivered: (list: DeliveryMark[]) =>
      marksLog?.markDelivered(list) ?? side(list.length, 200, (i) => 100 + list[i]!.recipient.length, (op, i) => {
        const m = list[i]!;
        op.set(["dlv", m.id, m.recipient], m.at);
      }, (i) => marks.add(list[i]!)),
    deliveredOf: (id) => marksLog?.deliveredOf(id) ?? Promise.resolve(marks.of(id)),
    async pruneDelivered(before, keep) {
      if (marksLog) return await marksLog.pruneDelivered(before, keep);
      const victims = marks.victims(before, keep);
      await side(victims.length, 500, () => 64, (op, i) => {
        const m = victims[i]!;
        op.delete(["dlv", m.id, m.recipient]);
      }, (i) => marks.remove(victims[i]!));
      return victims.length;
    },
    outboxAdd: (entries) =>
      side(entries.length, 50, (i) => 100 + entries[i]!.body.length, (op, i) => {
        const { id, ...value } = entries[i]!;
        op.set(["outbox", id], value);
      }, (i) => outbox.add(entries[i]!)),
    async outboxPeek(target, limit) {
      const ids = outbox.ids(target, limit);
      const out: OutboxEntry[] = [];
      for (let i = 0; i < ids.length; i += 10) {
        for (const e of await kv.getMany<Omit<OutboxEntry, "id">[]>(ids.slice(i, i + 10).map((id) => ["outbox", id]))) {
          if (e.value) out.push({ id: e.key[1] as string, ...e.value });
        }
      }
      return out;
    },
    outboxRemove: (ids) =>
      side(ids.length, 500, () => 64, (op, i) => op.delete(["outbox", ids[i]!]), (i) => outbox.remove(ids[i]!)),
    outboxStats: () => Promise.resolve(outbox.stats()),
    async close() {
      closed = true;
      if (queue.length > 0) startFlush(); // lazy writes still waiting
      if (flushing) await flushing;
      kv.close();
      marksLog?.close();
    },
  };
}
