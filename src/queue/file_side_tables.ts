/**
 * The file backend's side tables: delivery marks in an append-only JSON-lines
 * file (`delivered.log`, appends group-committed: everything appended while one
 * fsync runs goes out with the next one; pruning rewrites the file and renames it
 * into place) and the event outbox as one fsync'd file per event (`outbox/<id>.json`).
 * @module
 */
import { join } from "node:path";
import { DirSync } from "../spool/dir_sync.ts";
import { DeliveredIndex, OutboxIndex } from "./side_tables.ts";
import { type DeliveryMark, type OutboxEntry, type QueueStore, QueueStoreError } from "./store.ts";

/** The side-table operations of {@link QueueStore}, on files. */
export type FileSideTables = Pick<
  QueueStore,
  "markDelivered" | "deliveredOf" | "pruneDelivered" | "outboxAdd" | "outboxPeek" | "outboxRemove" | "outboxStats"
>;

const io = (what: string, err: unknown) =>
  new QueueStoreError(`${what}: ${(err as Error).message}`, "QUEUE_IO", { cause: err });

/** Opens (and loads) the side tables under `dir`. */
export async function openFileSideTables(dir: string, fsync: boolean): Promise<FileSideTables> {
  const logPath = join(dir, "delivered.log");
  const outboxDir = join(dir, "outbox");
  await Deno.mkdir(outboxDir, { recursive: true, mode: 0o700 });
  const outboxSync = new DirSync(outboxDir);
  const marks = new DeliveredIndex();
  const outbox = new OutboxIndex();

  try {
    for (const line of (await Deno.readTextFile(logPath)).split("\n")) {
      if (!line) continue;
      try {
        const m = JSON.parse(line) as DeliveryMark & { drop?: true };
        if (m.drop) marks.remove(m);
        else marks.add(m);
      } catch { /* a torn last line from a crash mid-append: that mark was never acknowledged */ }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw io("cannot read delivered.log", err);
  }
  for await (const entry of Deno.readDir(outboxDir)) {
    if (!entry.name.endsWith(".json")) {
      await Deno.remove(join(outboxDir, entry.name)).catch(() => {});
      continue;
    }
    try {
      outbox.add(JSON.parse(await Deno.readTextFile(join(outboxDir, entry.name))));
    } catch (err) {
      console.error(`queue: skipping unreadable outbox entry ${entry.name}: ${(err as Error).message}`);
    }
  }

  // Group-committed appends: lines wait while a write+fsync runs, then go out together.
  let pending: { text: string; done: PromiseWithResolvers<void> }[] = [];
  let writing: Promise<void> | null = null;
  let rewriting: Promise<void> = Promise.resolve();
  async function drain() {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        await rewriting;
        const file = await Deno.open(logPath, { append: true, create: true, mode: 0o600 });
        try {
          await file.write(new TextEncoder().encode(batch.map((b) => b.text).join("")));
          if (fsync) await file.syncData();
        } finally {
          file.close();
        }
        for (const b of batch) b.done.resolve();
      } catch (err) {
        for (const b of batch) b.done.reject(io("cannot append to delivered.log", err));
      }
    }
    writing = null;
  }
  function append(text: string): Promise<void> {
    const done = Promise.withResolvers<void>();
    pending.push({ text, done });
    writing ??= drain();
    return done.promise;
  }

  let seq = 0;
  return {
    async markDelivered(list) {
      if (list.length === 0) return;
      await append(list.map((m) => JSON.stringify({ id: m.id, recipient: m.recipient, at: m.at }) + "\n").join(""));
      for (const m of list) marks.add(m);
    },
    deliveredOf: (id) => Promise.resolve(marks.of(id)),
    async pruneDelivered(before, keep) {
      const victims = marks.victims(before, keep);
      if (victims.length === 0) return 0;
      for (const m of victims) marks.remove(m);
      // Rewrite what is left (appends wait for the rename), so the log never grows without bound.
      const run = rewriting.then(async () => {
        await writing;
        const tmp = `${logPath}.tmp${seq++}`;
        const kept = marks.victims(Infinity, 0).map((m) => JSON.stringify(m) + "\n").join("");
        await Deno.writeTextFile(tmp, kept, { mode: 0o600 });
        if (fsync) {
          const f = await Deno.open(tmp, { read: true, write: true });
          await f.syncData().finally(() => f.close());
        }
        await Deno.rename(tmp, logPath);
      });
      rewriting = run.catch(() => {});
      await run.catch((err) => {
        throw io("cannot rewrite delivered.log", err);
      });
      return victims.length;
    },
    async outboxAdd(entries) {
      await Promise.all(entries.map(async (e) => {
        const path = join(outboxDir, `${e.id}.json`);
        const tmp = `${path}.tmp`;
        const file = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
        try {
          await file.write(new TextEncoder().encode(JSON.stringify(e)));
          if (fsync) await file.syncData();
        } finally {
          file.close();
        }
        await Deno.rename(tmp, path);
      })).catch((err) => {
        throw io("cannot write the outbox", err);
      });
      if (fsync) await outboxSync.sync();
      for (const e of entries) outbox.add(e);
    },
    async outboxPeek(target, limit) {
      const out: OutboxEntry[] = [];
      for (const id of outbox.ids(target, limit)) {
        try {
          out.push(JSON.parse(await Deno.readTextFile(join(outboxDir, `${id}.json`))));
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw io(`cannot read outbox entry ${id}`, err);
        }
      }
      return out;
    },
    async outboxRemove(ids) {
      await Promise.all(
        ids.filter((id) => outbox.has(id)).map(async (id) => {
          await Deno.remove(join(outboxDir, `${id}.json`)).catch((err) => {
            if (!(err instanceof Deno.errors.NotFound)) throw io(`cannot remove outbox entry ${id}`, err);
          });
          outbox.remove(id);
        }),
      );
      if (fsync && ids.length > 0) await outboxSync.sync();
    },
    outboxStats: () => Promise.resolve(outbox.stats()),
  };
}
