/**
 * A bounded LRU cache of DNS answers whose entries expire after their own TTL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TtlLru } from "./cache.ts"; // @ts-ignore deno#26900
 *
 * const cache = new TtlLru<string>(2);
 * cache.set("a", "1", Date.now() + 1000);
 * assert.equal(cache.get("a")?.value, "1");
 * ```
 * @module
 */

/** One stored value with its expiry (ms since the epoch). */
export interface TtlEntry<T> {
  value: T;
  expiresAt: number;
}

/** Least-recently-used eviction beyond `maxEntries`; expired entries are never returned. */
export class TtlLru<T> {
  readonly #map = new Map<string, TtlEntry<T>>();
  constructor(readonly maxEntries: number, readonly now: () => number = Date.now) {}

  /** The live entry for `key` (and marks it used), or undefined. */
  get(key: string): TtlEntry<T> | undefined {
    const hit = this.#map.get(key);
    if (!hit) return undefined;
    this.#map.delete(key);
    if (hit.expiresAt <= this.now()) return undefined;
    this.#map.set(key, hit);
    return hit;
  }

  /** Stores a value, evicting the least recently used entry when full. */
  set(key: string, value: T, expiresAt: number): void {
    this.#map.delete(key);
    while (this.#map.size >= this.maxEntries) {
      const oldest = this.#map.keys().next();
      if (oldest.done) break;
      this.#map.delete(oldest.value);
    }
    this.#map.set(key, { value, expiresAt });
  }

  /** Removes one key. */
  delete(key: string): boolean {
    return this.#map.delete(key);
  }

  /** Drops expired entries; returns how many. */
  sweep(): number {
    const now = this.now();
    let n = 0;
    for (const [key, e] of this.#map) {
      if (e.expiresAt <= now) {
        this.#map.delete(key);
        n++;
      }
    }
    return n;
  }

  /** Empties the cache; returns how many entries there were. */
  clear(): number {
    const n = this.#map.size;
    this.#map.clear();
    return n;
  }

  /** Every entry, oldest use first. */
  entries(): [string, TtlEntry<T>][] {
    return [...this.#map];
  }

  /** Entries held (expired ones included until swept). */
  get size(): number {
    return this.#map.size;
  }
}
