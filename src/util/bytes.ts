/**
 * Byte-array helpers shared by the intake, the spool, authentication and the tests.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concatBytes } from "./bytes.ts"; // @ts-ignore deno#26900
 *
 * const joined = concatBytes([Uint8Array.of(1, 2), Uint8Array.of(), Uint8Array.of(3)]);
 * assert.deepEqual(joined, Uint8Array.of(1, 2, 3));
 * ```
 * @module
 */

/** The parts one after the other, in a new array (always a copy, also of a single part). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
