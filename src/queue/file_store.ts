/**
 * QueueStore on plain files: `<dir>/<id>.json`, written to a temp file, fsync'd,
 * renamed over the old one and the directory fsync'd (grouped). The due order is
 * kept by the in-memory {@link QueueIndex} (a heap by due time, so due checks never
 * scan the whole queue), rebuilt from the files on open. Operator state
 * ({@link QueueStore.putState}) is one small file per key under `<dir>/state/`. Delivery
 * marks and the event outbox live beside the records (file_side_tables.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newQueueRecord } from "./submit.ts";
 * import { openFileStore } from "./file_store.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const store = await openFileStore(dir);
 * const envelope = { sender: "", recipients: [{ address: "bob@example.net" }], client: { address: "127.0.0.1", listener: "mx" } };
 * const record = newQueueRecord({ id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R", size: 20 }, envelope, Date.now());
 * await store.put(record);
 * assert.equal((await store.get(record.id))?.id, record.id);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { join } from "node:path";
import { DirSync } from "../spool/dir_sync.ts";
import { isUlid } from "../spool/ulid.ts";
import { isScheduled, QueueIndex } from "./index_cache.ts";
import { openFileSideTables } from "./file_side_tables.ts";
import { createLeaseTable } from "./leases.ts";
import { openStateDir } from "./file_state.ts";
import { matchesFilter, type QueueStore, QueueStoreError } from "./store.ts";
import type { Priority, QueueFilter, QueueRecord } from "./types.ts";

/** Opens the file queue store at `dir` (created if missing). */
export async function openFileStore(dir: string, options: { fsync?: boolean } = {}): Promise<QueueStore> {
  const fsync = options.fsync ?? true;
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const dirSync = new DirSync(dir);
  const index = new QueueIndex({ ordered: true });
  const leases = createLeaseTable();
  let closed = false;
  let seq = 0;
  // Writes of one id are serialized so a later put can never be overtaken by an earlier one.
  const chains = new Map<string, Promise<void>>();

  const pathOf = (id: string) => join(dir, `${id}.json`);
  const { flush: flushState, ...state } = await openStateDir(join(dir, "state"), { fsync, closed: () => closed });

  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.includes(".tmp")) {
      await Deno.remove(join(dir, entry.name)).catch(() => {});
      continue;
    }
    const id = entry.name.replace(/\.json$/, "");
    if (!isUlid(id)) continue;
    try {
      index.set(JSON.parse(await Deno.readTextFile(pathOf(id))));
    } catch (err) {
      console.error(`queue: skipping unreadable record ${entry.name}: ${(err as Error).message}`);
    }
  }

  async function read(id: string): Promise<QueueRecord | null> {
    try {
      return JSON.parse(await Deno.readTextFile(pathOf(id)));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw new QueueStoreError(`cannot read queue record ${id}: ${(err as Error).message}`, "QUEUE_IO", {
        cause: err,
      });
    }
  }

  function serialized(id: string, fn: () => Promise<void>): Promise<void> {
    if (closed) return Promise.reject(new QueueStoreError("queue store is closed", "QUEUE_CLOSED"));
    const prev = chains.get(id) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    chains.set(id, next);
    const cleanup = () => {
      if (chains.get(id) === next) chains.delete(id);
    };
    next.then(cleanup, cleanup);
    return next;
  }

  const sideTables = await openFileSideTables(dir, fsync);

  async function due(
    now: number,
    limit: number,
    priority?: Priority,
    skip?: (id: string) => boolean,
  ): Promise<QueueRecord[]> {
    const records = await Promise.all(index.dueIds(now, limit, priority, skip).map(read));
    return records.filter((r): r is QueueRecord => r !== null && isScheduled(r.status));
  }

  return {
    ...sideTables,
    backend: "file",
    ...state,
    put(record) {
      const copy = structuredClone(record);
      return serialized(record.id, async () => {
        const tmp = join(dir, `${record.id}.tmp${seq++}`);
        try {
          const file = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
          try {
            await file.write(new TextEncoder().encode(JSON.stringify(copy)));
            if (fsync) await file.syncData();
          } finally {
            file.close();
          }
          await Deno.rename(tmp, pathOf(record.id));
          if (fsync) await dirSync.sync();
        } catch (err) {
          await Deno.remove(tmp).catch(() => {});
          throw new QueueStoreError(`cannot write queue record ${record.id}: ${(err as Error).message}`, "QUEUE_IO", {
            cause: err,
          });
        }
        index.set(copy);
      });
    },
    delete(id) {
      return serialized(id, async () => {
        try {
          await Deno.remove(pathOf(id));
          if (fsync) await dirSync.sync();
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) {
            throw new QueueStoreError(`cannot delete queue record ${id}: ${(err as Error).message}`, "QUEUE_IO");
          }
        }
        index.delete(id);
        leases.forget(id);
      });
    },
    get: read,
    due,
    // Leased records are passed over in the index, so a claim reads only the records it can take
    // (not `limit` plus every record in flight).
    claim: (options) =>
      leases.claim(options, (now) => due(now, options.limit, options.priority, (id) => leases.held(id, now))),
    renew: (ids, owner, leaseMs, now) => Promise.resolve(leases.renew(ids, owner, leaseMs, now)),
    release: (ids, owner) => Promise.resolve(leases.release(ids, owner)),
    nextDueAt: () => Promise.resolve(index.nextDueAt()),
    async *list(filter: QueueFilter = {}) {
      let n = 0;
      for (const id of [...index.entries.keys()].sort()) {
        const record = await read(id);
        if (!record || !matchesFilter(record, filter)) continue;
        yield record;
        if (filter.limit && ++n >= filter.limit) return;
      }
    },
    counts: () => Promise.resolve(index.counts()),
    stats: () => Promise.resolve(index.stats()),
    async probe() {
      const path = join(dir, `.probe.tmp${seq++}`);
      await Deno.writeFile(path, new Uint8Array(1));
      await Deno.remove(path);
    },
    async close() {
      closed = true;
      await Promise.allSettled([...chains.values(), flushState()]);
      sideTables.closeSideTables();
    },
  };
}
