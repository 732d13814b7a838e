/**
 * The fast path of outbound DATA encoding: decides, without a per-byte JavaScript loop,
 * whether a chunk of a message needs anything from nodemailer's `DataStream._transform`
 * (dot-stuffing, bare CR / bare LF → CRLF), read in nodemailer@10.6.0
 * (`dist/esm/smtp-connection/data-stream.js`). That transform walks every byte; Empath's
 * stored messages are already CRLF-normalised by the intake's DataFilter, so nearly every
 * chunk passes through it unchanged, and a "clean" chunk can skip it.
 *
 * A chunk is clean when the transform would insert nothing into it, i.e. (with `prev` the
 * byte before each position: the previous chunk's last byte for index 0, `false` at the
 * start of the stream):
 * - every LF follows a CR (else the transform inserts a CR);
 * - every CR is followed by an LF — a CR as the chunk's last byte is fine here: the
 *   transform looks at it as `prev` of the NEXT chunk's first byte, so that byte decides;
 * - no '.' follows an LF, nor starts the stream (else the transform inserts a '.').
 *
 * Only `Uint8Array.prototype.indexOf` scans the bytes: one pass finds the LFs (each checked
 * against its neighbours), one counts the CRs. Every LF after index 0 follows its own CR, so
 * when the CRs number exactly those LFs (plus one for a chunk-final CR), no CR is bare.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isCleanChunk } from "./dot_stuff.ts"; // @ts-ignore deno#26900
 *
 * const bytes = (s: string) => new TextEncoder().encode(s);
 * assert.equal(isCleanChunk(bytes("Subject: hi\r\n\r\nbody\r\n"), false), true);
 * assert.equal(isCleanChunk(bytes("a\r\n.b\r\n"), false), false); // a line starting with "."
 * assert.equal(isCleanChunk(bytes(".b\r\n"), 0x0a), false); // the same, across chunks
 * assert.equal(isCleanChunk(bytes("a\nb"), false), false); // bare LF
 * assert.equal(isCleanChunk(bytes("a\r"), false), true); // the next chunk decides
 * assert.equal(isCleanChunk(bytes("b"), 0x0d), false); // ... bare CR
 * ```
 * @module
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** `Uint8Array.prototype.indexOf`, called directly (a Buffer's own `indexOf` is slower for one byte). */
const indexOf = Uint8Array.prototype.indexOf;

/**
 * The byte before a chunk as nodemailer's DataStream keeps it (`lastByte`): the previous
 * chunk's last byte, or `false` before the first non-empty chunk.
 */
export type PreviousByte = number | false;

/**
 * True when nodemailer's DataStream transform would pass `chunk` through unchanged
 * (nothing to dot-stuff, no bare CR or LF), given the byte before it. An empty chunk is clean.
 */
export function isCleanChunk(chunk: Uint8Array, prev: PreviousByte): boolean {
  const len = chunk.length;
  if (len === 0) return true;
  const first = chunk[0]!;
  if (prev === CR ? first !== LF : first === LF) return false;
  if (first === DOT && (prev === LF || prev === false)) return false;
  // LFs: each after index 0 follows a CR (index 0 was checked against prev above), and no
  // '.' follows any of them (a '.' after a chunk-final LF is the next chunk's first byte).
  let crlfs = 0;
  for (let i = indexOf.call(chunk, LF); i !== -1; i = indexOf.call(chunk, LF, i + 1)) {
    if (i > 0) {
      if (chunk[i - 1] !== CR) return false;
      crlfs++;
    }
    if (chunk[i + 1] === DOT) return false;
  }
  // CRs: the ones counted above, plus a chunk-final CR; any other CR is bare.
  const allowed = crlfs + (chunk[len - 1] === CR ? 1 : 0);
  let crs = 0;
  for (let i = indexOf.call(chunk, CR); i !== -1; i = indexOf.call(chunk, CR, i + 1)) {
    if (++crs > allowed) return false;
  }
  return crs === allowed;
}
