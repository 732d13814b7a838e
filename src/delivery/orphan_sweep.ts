/**
 * The orphan sweep: removes spool data that has no queue record, i.e. data of
 * finished messages whose unlink failed (state is removed first on purpose, see
 * lifecycle.ts). Files being received, being delivered, or younger than a minute
 * (their record may be a moment away) are kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { openSpool } from "../spool/store.ts";
 * import { sweepOrphans } from "./orphan_sweep.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const spool = await openSpool(dir);
 * const w = await spool.create(); // data with no queue record: an orphan once old enough
 * await w.write(new TextEncoder().encode("Subject: hi\r\n\r\n"));
 * await w.commit();
 * const store = { get: () => Promise.resolve(null) };
 * const removed = await sweepOrphans({ spool, store, log: getLogger(["empath"]), inFlight: () => false }, Date.now() + 3_600_000);
 * assert.equal(removed, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { QueueStore } from "../queue/mod.ts";
import { type Spool, ulidTime } from "../spool/mod.ts";

/** How often the engine sweeps. */
export const ORPHAN_SWEEP_MS = 10 * 60_000;
/** Spool files younger than this are never orphans. */
export const ORPHAN_MIN_AGE_MS = 60_000;

/** What the sweep needs. */
export interface OrphanSweepOptions {
  spool: Spool;
  store: Pick<QueueStore, "get">;
  log: Logger;
  /** True while `id` is being delivered. */
  inFlight: (id: string) => boolean;
}

/** Removes orphaned spool files; returns how many. */
export async function sweepOrphans(options: OrphanSweepOptions, now: number = Date.now()): Promise<number> {
  const { spool, store, log } = options;
  let removed = 0;
  for await (const id of spool.list()) {
    if (spool.receiving.has(id) || options.inFlight(id) || now - ulidTime(id) < ORPHAN_MIN_AGE_MS) continue;
    if (await store.get(id)) continue;
    await spool.delete(id).then(() => removed++, (err) => {
      log.warning("orphan sweep could not remove {id}: {error}", { id, error: (err as Error).message });
    });
  }
  if (removed > 0) log.info("orphan sweep removed {n} spool files without queue state", { n: removed });
  return removed;
}
