/**
 * A binary min-heap of `(due, id)` pairs, earliest due first (ties by id), so the
 * earliest due records are found in O(k log n) instead of a scan of the whole queue.
 * Deletion is lazy: the owner pushes a new pair whenever a record's due time changes
 * and tells {@link DueHeap.take} and {@link DueHeap.peek} which pairs are still
 * current; stale pairs are dropped when they reach the top.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DueHeap } from "./due_heap.ts"; // @ts-ignore deno#26900
 *
 * const heap = new DueHeap();
 * heap.push(30, "c");
 * heap.push(10, "a");
 * heap.push(20, "b");
 * const current = (_due: number, id: string) => id !== "b"; // b was rescheduled
 * assert.deepEqual(heap.take(25, 10, current), ["a"]); // "b" is stale and dropped
 * assert.equal(heap.peek(current), 10); // "a" stays until its record's due time changes
 * ```
 * @module
 */

/** Tells whether a pair is still the record's current due time. */
export type IsCurrent = (due: number, id: string) => boolean;

/** Min-heap of due pairs with lazy deletion. */
export class DueHeap {
  #dues: number[] = [];
  #ids: string[] = [];
  /** Comparisons and moves made so far (a work counter for tests and benchmarks). */
  work = 0;

  /** Pairs held, stale ones included. */
  get size(): number {
    return this.#dues.length;
  }

  /** Adds a pair. */
  push(due: number, id: string): void {
    this.#dues.push(due);
    this.#ids.push(id);
    this.#up(this.#dues.length - 1);
  }

  /** Drops every pair and refills the heap from `pairs` in O(n). */
  rebuild(pairs: Iterable<[number, string]>): void {
    this.#dues = [];
    this.#ids = [];
    for (const [due, id] of pairs) {
      this.#dues.push(due);
      this.#ids.push(id);
    }
    for (let i = (this.#dues.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  /** The earliest current due time, or null (stale pairs on top are dropped). */
  peek(isCurrent: IsCurrent): number | null {
    while (this.#dues.length > 0) {
      const due = this.#dues[0]!;
      if (isCurrent(due, this.#ids[0]!)) return due;
      this.#pop();
    }
    return null;
  }

  /**
   * Ids of up to `limit` current pairs due at or before `now`, earliest first, passing over
   * ids `skip` names (they are kept but not counted). Current pairs stay in the heap; stale
   * pairs met on the way are dropped, and so are duplicates of a pair.
   */
  take(now: number, limit: number, isCurrent: IsCurrent, skip?: (id: string) => boolean): string[] {
    const out: string[] = [];
    const kept: [number, string][] = [];
    const seen = new Set<string>();
    while (out.length < limit && this.#dues.length > 0 && this.#dues[0]! <= now) {
      const due = this.#dues[0]!;
      const id = this.#ids[0]!;
      this.#pop();
      if (!isCurrent(due, id) || seen.has(id)) continue;
      seen.add(id);
      kept.push([due, id]);
      if (!skip?.(id)) out.push(id);
    }
    for (const [due, id] of kept) this.push(due, id);
    return out;
  }

  #less(a: number, b: number): boolean {
    this.work++;
    const da = this.#dues[a]!;
    const db = this.#dues[b]!;
    return da < db || (da === db && this.#ids[a]! < this.#ids[b]!);
  }

  #swap(a: number, b: number): void {
    const due = this.#dues[a]!;
    this.#dues[a] = this.#dues[b]!;
    this.#dues[b] = due;
    const id = this.#ids[a]!;
    this.#ids[a] = this.#ids[b]!;
    this.#ids[b] = id;
  }

  #pop(): void {
    const last = this.#dues.length - 1;
    this.#swap(0, last);
    this.#dues.pop();
    this.#ids.pop();
    if (last > 0) this.#down(0);
  }

  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(i, parent)) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const n = this.#dues.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < n && this.#less(l, min)) min = l;
      if (r < n && this.#less(r, min)) min = r;
      if (min === i) return;
      this.#swap(i, min);
      i = min;
    }
  }
}
