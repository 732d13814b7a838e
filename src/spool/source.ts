/**
 * Where a committed message's bytes can be read from, as plain data that can cross a
 * thread boundary: the in-memory copy of a just-committed small message, or a file and
 * byte range. {@link openSource} turns either into a Node readable stream (what SMTP
 * clients and parsers read), in whichever thread holds it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openSource } from "./source.ts"; // @ts-ignore deno#26900
 *
 * const stream = openSource({ chunks: [new TextEncoder().encode("Subject: hi\r\n\r\n")] });
 * let text = "";
 * for await (const chunk of stream) text += new TextDecoder().decode(chunk);
 * assert.equal(text, "Subject: hi\r\n\r\n");
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { SpoolError } from "./errors.ts";
import type { SegmentLocation } from "./segments.ts";

/** A message's bytes: kept in memory, or in a file (`length` -1: the whole file). */
export type MessageSource = { chunks: Uint8Array[] } | { location: SegmentLocation };

/** Ranges up to this size are read in one piece with Deno's file ops (no fs.ReadStream per message). */
const SMALL_RANGE = 256 * 1024;

/** One read of `length` bytes at `position` (Deno's async ops run off the event loop). */
async function* readRange(path: string, position: number, length: number): AsyncGenerator<Buffer> {
  const file = await Deno.open(path, { read: true });
  try {
    await file.seek(position, Deno.SeekMode.Start);
    const out = new Uint8Array(length);
    let off = 0;
    while (off < length) {
      const n = await file.read(out.subarray(off));
      if (n === null) throw new SpoolError(`spool data in ${path} is truncated`, "SPOOL_IO");
      off += n;
    }
    yield Buffer.from(out.buffer, 0, length); // a Buffer, like fs.ReadStream's chunks
  } finally {
    file.close();
  }
}

/** A Node stream over a location's bytes, from `start` within the message. */
export function rangeStream(loc: SegmentLocation, start = 0): Readable {
  if (loc.length < 0) return createReadStream(loc.path, { start });
  if (loc.length === 0 || start >= loc.length) return Readable.from([]);
  if (loc.length - start <= SMALL_RANGE) {
    return Readable.from(readRange(loc.path, loc.start + start, loc.length - start));
  }
  return createReadStream(loc.path, { start: loc.start + start, end: loc.start + loc.length - 1 });
}

/** A Node stream over in-memory chunks (Buffers that share their memory). */
export function chunkStream(chunks: Uint8Array[]): Readable {
  return Readable.from(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

/** Opens a source as a Node readable stream. */
export function openSource(source: MessageSource): Readable {
  return "chunks" in source ? chunkStream(source.chunks) : rangeStream(source.location, 0);
}
