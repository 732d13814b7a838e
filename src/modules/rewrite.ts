/**
 * Adds header fields to a message that is already stored (fields a `data` hook
 * added). The new version is written to `spool/tmp/<id>`, fsync'd and renamed over
 * the data file, and the directory is fsync'd: a crash leaves either version, and
 * a leftover in tmp/ is removed at the next start. The fields go right below the
 * topmost header field (Empath's own Received), like fields added before DATA.
 * @module
 */
import { join } from "node:path";
import type { Spool } from "../spool/mod.ts";

const CHUNK = 64 * 1024;

/** End of the first (possibly folded) header field in `head`, or 0 when there is none. */
export function firstFieldEnd(head: Uint8Array): number {
  for (let i = 0; i + 2 < head.length; i++) {
    if (head[i] === 0x0d && head[i + 1] === 0x0a && head[i + 2] !== 0x20 && head[i + 2] !== 0x09) return i + 2;
  }
  return 0;
}

/** Inserts `fields` (CRLF-terminated lines) into the stored message `id`; returns its new size. */
export async function insertHeaders(spool: Spool, id: string, fields: string): Promise<number> {
  const src = spool.pathOf(id);
  const tmp = join(spool.dir, "tmp", id);
  const insert = new TextEncoder().encode(fields);
  const input = await Deno.open(src, { read: true });
  let size = 0;
  try {
    const output = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
    try {
      const write = async (bytes: Uint8Array) => {
        let off = 0;
        while (off < bytes.length) off += await output.write(bytes.subarray(off));
        size += bytes.length;
      };
      const buf = new Uint8Array(CHUNK);
      let first = true;
      while (true) {
        const n = await input.read(buf);
        if (n === null) break;
        const chunk = buf.subarray(0, n);
        if (first) {
          first = false;
          const at = firstFieldEnd(chunk);
          await write(chunk.subarray(0, at));
          await write(insert);
          await write(chunk.subarray(at));
        } else await write(chunk);
      }
      if (first) await write(insert);
      await output.syncData();
    } finally {
      output.close();
    }
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  } finally {
    input.close();
  }
  await Deno.rename(tmp, src);
  const dir = await Deno.open(join(spool.dir, "data"), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
  return size;
}
