/**
 * Puts header fields on top of a message already stored in its own data file (large
 * messages, and messages a module's `data` hook read by path): the new version is written
 * to `spool/tmp/<id>`, fsync'd and renamed over the data file, and the directory is
 * fsync'd, so a crash leaves one version or the other (the record is written only after).
 * @module
 */
import { join } from "node:path";
import type { Spool } from "../spool/mod.ts";

const CHUNK = 64 * 1024;

/**
 * Writes `prefix` followed by `body` (or, without `body`, by the stored bytes) as the new
 * data of message `id`; returns the new size.
 */
export async function rewriteStored(spool: Spool, id: string, prefix: string, body?: Uint8Array): Promise<number> {
  const src = spool.pathOf(id);
  const tmp = join(spool.dir, "tmp", id);
  let size = 0;
  const output = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    const write = async (bytes: Uint8Array) => {
      let off = 0;
      while (off < bytes.length) off += await output.write(bytes.subarray(off));
      size += bytes.length;
    };
    await write(new TextEncoder().encode(prefix));
    if (body) await write(body);
    else {
      const input = await Deno.open(src, { read: true });
      try {
        const buf = new Uint8Array(CHUNK);
        for (let n = await input.read(buf); n !== null; n = await input.read(buf)) await write(buf.subarray(0, n));
      } finally {
        input.close();
      }
    }
    await output.syncData();
  } catch (err) {
    output.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  output.close();
  await Deno.rename(tmp, src);
  const dir = await Deno.open(join(spool.dir, "data"), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
  return size;
}
