/**
 * Replaces the data file of a stored message crash-safely: the new version is written to
 * `spool/tmp/<id>` by `fill`, fsync'd and renamed over the data file, and the directory is
 * fsync'd, so a crash leaves one version or the other (a leftover in tmp/ is removed at the
 * next start). Used to put header fields on top of (or into) an already stored message.
 *
 * @example
 * ```ts
 * import { openSpool } from "./store.ts";
 * import { replaceStored } from "./replace.ts"; // @ts-ignore deno#26900
 * const dir = await Deno.makeTempDir();
 * const spool = await openSpool(dir, { fsync: false });
 * const w = await spool.create(undefined, { standalone: true });
 * await w.write(new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n"));
 * await w.commit();
 * const size = await replaceStored(spool, w.id, (write) => write(new TextEncoder().encode("X: 1\r\n")));
 * console.log(size); // 6
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { join } from "node:path";
import type { Spool } from "./store.ts";

/** Writes bytes to the new version (all of them, in order). */
export type ReplaceWrite = (bytes: Uint8Array) => Promise<void>;

/** Writes the new data of message `id` through `fill` and swaps it in; returns the new size. */
export async function replaceStored(
  spool: Spool,
  id: string,
  fill: (write: ReplaceWrite) => Promise<void>,
): Promise<number> {
  const tmp = join(spool.dir, "tmp", id);
  let size = 0;
  const output = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    await fill(async (bytes) => {
      let off = 0;
      while (off < bytes.length) off += await output.write(bytes.subarray(off));
      size += bytes.length;
    });
    await output.syncData();
  } catch (err) {
    output.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  output.close();
  await Deno.rename(tmp, spool.pathOf(id));
  const dir = await Deno.open(join(spool.dir, "data"), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
  return size;
}
