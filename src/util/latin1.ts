/**
 * A byte array as a string of one character per byte, for scanning with
 * `String.prototype.indexOf` (#18): in Deno 2.9.6 `Uint8Array.prototype.indexOf` costs about
 * 100 ns a call and `Buffer.prototype.indexOf` with a multi-byte needle about 180 µs per
 * 64 KiB, while the view is made at memcpy speed (about 4 µs per 64 KiB) and a string search
 * costs a few ns a call. A Buffer's latin1 decoding maps byte n to U+00nn;
 * `TextDecoder("latin1")` is windows-1252 in WHATWG and is not used.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { latin1 } from "./latin1.ts"; // @ts-ignore deno#26900
 *
 * const text = latin1(Uint8Array.of(0x61, 0x0d, 0x0a, 0x85, 0x2e));
 * assert.equal(text.length, 5);
 * assert.equal(text.indexOf("\r\n"), 1);
 * assert.equal(text.charCodeAt(3), 0x85);
 * ```
 * @module
 */
import { Buffer } from "node:buffer";

/** `bytes` as a string with character i = byte i (no copy of the bytes into a Buffer first). */
export function latin1(bytes: Uint8Array): string {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buf.toString("latin1");
}
