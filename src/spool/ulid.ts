/**
 * Monotonic ULIDs (https://github.com/ulid/spec): 48-bit millisecond time + 80 random bits,
 * Crockford base32, 26 characters, sortable by creation time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isUlid, ulid, ulidTime } from "./ulid.ts"; // @ts-ignore deno#26900
 *
 * const id = ulid(1_700_000_000_000); // e.g. "01HF2ZQ4G0…", 26 characters
 * assert.equal(isUlid(id), true);
 * assert.equal(ulidTime(id), 1_700_000_000_000);
 * ```
 * @module
 */

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
let lastTime = -1;
const lastRandom = new Uint8Array(10);

function encodeTime(ms: number): string {
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return out;
}

function encodeRandom(bytes: Uint8Array): string {
  // 80 bits -> 16 base32 characters.
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

/** Creates a new ULID; ids made in the same millisecond still sort in creation order. */
export function ulid(now: number = Date.now()): string {
  if (now <= lastTime) {
    // Same (or earlier) millisecond: increment the random part (monotonic ULID).
    // i stays within 0..9 and lastRandom has 10 bytes, so every read is defined.
    for (let i = 9; i >= 0; i--) {
      const b = lastRandom[i]!;
      if (b === 255) {
        lastRandom[i] = 0;
      } else {
        lastRandom[i] = b + 1;
        break;
      }
    }
    now = lastTime;
  } else {
    crypto.getRandomValues(lastRandom);
    lastRandom[0] = lastRandom[0]! & 0x7f; // leave headroom for increments (byte 0 of 10 exists)
    lastTime = now;
  }
  return encodeTime(now) + encodeRandom(lastRandom);
}

/** True for a syntactically valid ULID (used to reject path tricks in ids). */
export function isUlid(text: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{26}$/.test(text);
}

/** The creation time encoded in a ULID, in epoch milliseconds. */
export function ulidTime(id: string): number {
  let ms = 0;
  for (const ch of id.slice(0, 10)) ms = ms * 32 + ALPHABET.indexOf(ch);
  return ms;
}
