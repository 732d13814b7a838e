/**
 * Puts header fields on top of a message already stored in its own data file (large
 * messages, and messages a module's `data` hook read by path), crash-safely through the
 * spool's {@link replaceStored} (the record is written only after).
 * @module
 */
import { replaceStored, type Spool } from "../spool/mod.ts";

const CHUNK = 64 * 1024;

/**
 * Writes `prefix` followed by `body` (or, without `body`, by the stored bytes) as the new
 * data of message `id`; returns the new size.
 */
export function rewriteStored(spool: Spool, id: string, prefix: string, body?: Uint8Array): Promise<number> {
  return replaceStored(spool, id, async (write) => {
    await write(new TextEncoder().encode(prefix));
    if (body) return await write(body);
    const input = await Deno.open(spool.pathOf(id), { read: true });
    try {
      const buf = new Uint8Array(CHUNK);
      for (let n = await input.read(buf); n !== null; n = await input.read(buf)) await write(buf.subarray(0, n));
    } finally {
      input.close();
    }
  });
}
