/**
 * The file backend's side tables: delivery marks in `delivered.log` (marks_log.ts)
 * and the event outbox as one fsync'd file per event (`outbox/<id>.json`).
 * @module
 */
import { join } from "node:path";
import { DirSync } from "../spool/dir_sync.ts";
import { openMarksLog } from "./marks_log.ts";
import { OutboxIndex } from "./side_tables.ts";
import { type OutboxEntry, type QueueStore, QueueStoreError } from "./store.ts";

/** The side-table operations of {@link QueueStore}, on files, and closing them. */
export type FileSideTables =
  & Pick<
    QueueStore,
    "markDelivered" | "deliveredOf" | "pruneDelivered" | "outboxAdd" | "outboxPeek" | "outboxRemove" | "outboxStats"
  >
  & { closeSideTables(): void };

const io = (what: string, err: unknown) =>
  new QueueStoreError(`${what}: ${(err as Error).message}`, "QUEUE_IO", { cause: err });

/** Opens (and loads) the side tables under `dir`. */
export async function openFileSideTables(dir: string, fsync: boolean): Promise<FileSideTables> {
  const outboxDir = join(dir, "outbox");
  await Deno.mkdir(outboxDir, { recursive: true, mode: 0o700 });
  const outboxSync = new DirSync(outboxDir);
  const outbox = new OutboxIndex();

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

  const marks = await openMarksLog(join(dir, "delivered.log"), fsync);
  return {
    markDelivered: marks.markDelivered,
    deliveredOf: marks.deliveredOf,
    pruneDelivered: marks.pruneDelivered,
    closeSideTables: () => marks.close(),
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
