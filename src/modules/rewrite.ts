/**
 * Adds header fields to a message that is already stored (fields a `data` hook
 * added), crash-safely through the spool's {@link replaceStored}. The fields go right below the
 * topmost header field (Empath's own Received), like fields added before DATA.
 * @module
 */
import { replaceStored, type Spool } from "../spool/mod.ts";

const CHUNK = 64 * 1024;

/** End of the first (possibly folded) header field in `head`, or 0 when there is none. */
export function firstFieldEnd(head: Uint8Array): number {
  for (let i = 0; i + 2 < head.length; i++) {
    if (head[i] === 0x0d && head[i + 1] === 0x0a && head[i + 2] !== 0x20 && head[i + 2] !== 0x09) return i + 2;
  }
  return 0;
}

/** Inserts `fields` (CRLF-terminated lines) into the stored message `id`; returns its new size. */
export function insertHeaders(spool: Spool, id: string, fields: string): Promise<number> {
  const insert = new TextEncoder().encode(fields);
  return replaceStored(spool, id, async (write) => {
    const input = await Deno.open(spool.pathOf(id), { read: true });
    try {
      const buf = new Uint8Array(CHUNK);
      let first = true;
      for (let n = await input.read(buf); n !== null; n = await input.read(buf)) {
        const chunk = buf.subarray(0, n);
        if (!first) {
          await write(chunk);
          continue;
        }
        first = false;
        const at = firstFieldEnd(chunk);
        await write(chunk.subarray(0, at));
        await write(insert);
        await write(chunk.subarray(at));
      }
      if (first) await write(insert);
    } finally {
      input.close();
    }
  });
}
