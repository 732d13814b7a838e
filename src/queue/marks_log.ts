/**
 * Delivery marks in an append-only JSON-lines file, used by the local backends
 * (files, and Deno KV on a local path). A mark is written to the file with one
 * synchronous `write(2)` the moment it is made — from then on it survives the
 * death of the process (SIGKILL, OOM, a crash), because the kernel holds the data.
 * The promise resolves right after that write. With `fsync`, the file is
 * `fdatasync`'d in the background at most once a second (and at close): a mark
 * guards only the short time until the record's own final update is committed,
 * which is durable by itself, so a power loss within that second can cost a
 * duplicate (RFC 5321 at-least-once, as with Postfix), never a message — while a
 * sync per delivered message cost as much CPU as the message's other work. The
 * shorter the time between the next hop's 250 and the write, the fewer duplicates a
 * crash can cause. Pruning rewrites the file and renames it into place
 * (synchronously, so no append can fall between).
 * @module
 */
import { DeliveredIndex } from "./side_tables.ts";
import { type DeliveryMark, type QueueStore, QueueStoreError } from "./store.ts";

/** The mark operations of {@link QueueStore}, plus closing the file. */
export type MarksLog = Pick<QueueStore, "markDelivered" | "deliveredOf" | "pruneDelivered"> & { close(): void };

const enc = new TextEncoder();
/** Longest time a written mark waits for its background fdatasync. */
const SYNC_INTERVAL_MS = 1000;
const io = (what: string, err: unknown) =>
  new QueueStoreError(`${what}: ${(err as Error).message}`, "QUEUE_IO", { cause: err });
const line = (m: DeliveryMark) => JSON.stringify({ id: m.id, recipient: m.recipient, at: m.at }) + "\n";

/** Opens (and loads) the marks log at `path`. */
export async function openMarksLog(path: string, fsync: boolean): Promise<MarksLog> {
  const marks = new DeliveredIndex();
  try {
    for (const text of (await Deno.readTextFile(path)).split("\n")) {
      if (!text) continue;
      try {
        marks.add(JSON.parse(text));
      } catch { /* a torn last line from a crash mid-append: that mark was never acknowledged */ }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw io(`cannot read ${path}`, err);
  }
  const open = () => Deno.openSync(path, { append: true, create: true, mode: 0o600 });
  let file = open();

  // Background fdatasync, at most once a second while marks are being written.
  let running: Promise<void> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let dirty = false;
  const syncSoon = () => {
    dirty = true;
    if (!fsync || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (!dirty || running) return syncSoon();
      dirty = false;
      const run = file.syncData().catch((err) => {
        console.error(`queue: cannot sync ${path}: ${(err as Error).message}`);
        dirty = true;
      });
      running = run.finally(() => running = null);
    }, SYNC_INTERVAL_MS);
    Deno.unrefTimer(timer);
  };

  return {
    markDelivered(list) {
      if (list.length === 0) return Promise.resolve();
      try {
        const bytes = enc.encode(list.map(line).join(""));
        let off = 0;
        while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
      } catch (err) {
        return Promise.reject(io(`cannot append to ${path}`, err));
      }
      for (const m of list) marks.add(m);
      syncSoon();
      return Promise.resolve();
    },
    deliveredOf: (id) => Promise.resolve(marks.of(id)),
    async pruneDelivered(before, keep) {
      const victims = marks.victims(before, keep);
      if (victims.length === 0) return 0;
      for (const m of victims) marks.remove(m);
      while (running) await running.catch(() => {});
      try {
        const tmp = `${path}.tmp`;
        Deno.writeFileSync(tmp, enc.encode(marks.victims(Infinity, 0).map(line).join("")), { mode: 0o600 });
        if (fsync) {
          const f = Deno.openSync(tmp, { read: true, write: true });
          try {
            f.syncDataSync();
          } finally {
            f.close();
          }
        }
        Deno.renameSync(tmp, path);
        file.close();
        file = open();
      } catch (err) {
        throw io(`cannot rewrite ${path}`, err);
      }
      return victims.length;
    },
    close() {
      clearTimeout(timer);
      try {
        if (fsync && dirty) file.syncDataSync();
        file.close();
      } catch { /* closed */ }
    },
  };
}
