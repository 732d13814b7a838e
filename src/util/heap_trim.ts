/**
 * Gives memory back after a burst. V8 collects the old generation only when it reaches a
 * limit that grows with the heap, keeps the pages it freed, and its memory reducer waits
 * ~30 s of idleness; so right after 100,000 messages the daemon held ~150–250 MB of heap for
 * half a minute (a plain full collection frees the objects but not the pages). This timer
 * looks once a second; when no work was counted since the last look (a burst is over) and
 * the committed heap is more than `slackBytes` above what the last trim left, it runs one
 * memory-reducing collection (V8's "last-resort" flavour: full collections that also
 * release the freed pages; ~0.1–0.2 s for a 200 MB heap). At most one per `minIntervalMs`.
 *
 * It works when the daemon runs with `--v8-flags=--expose-gc` (the `start` and `compile`
 * tasks do); without it, {@link startHeapTrim} returns a no-op.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startHeapTrim } from "./heap_trim.ts"; // @ts-ignore deno#26900
 *
 * let heap = 10_000_000;
 * let work = 0;
 * let collections = 0;
 * const trim = startHeapTrim({
 *   intervalMs: 0, // ticks only by hand here
 *   slackBytes: 1_000_000,
 *   minIntervalMs: 0,
 *   heapBytes: () => heap,
 *   activity: () => work,
 *   gc: () => void (collections++, heap = 10_000_000),
 * });
 * heap = 20_000_000;
 * work++;
 * trim.tick(); // work was done since the last look: a burst may still run
 * trim.tick(); // quiet and 10 MB above the floor: trim
 * assert.equal(collections, 1);
 * trim.stop();
 * ```
 * @module
 */

/** Options of {@link startHeapTrim}. */
export interface HeapTrimOptions {
  /** How often to look (default 1000 ms; 0 = no timer, {@link HeapTrim.tick} by hand). */
  intervalMs?: number;
  /** Committed heap tolerated above what the last trim left (default 32 MiB). */
  slackBytes?: number;
  /** Least time between two trims (default 30 s). */
  minIntervalMs?: number;
  /** Committed heap (default `Deno.memoryUsage().heapTotal`). */
  heapBytes?: () => number;
  /** A counter of work done (e.g. messages queued and delivered); quiet = unchanged since the last look. */
  activity?: () => number;
  /** The collection (default V8's `gc` with the memory-reducing "last-resort" flavour, with `--expose-gc`). */
  gc?: () => void;
  /** Clock (default `Date.now`). */
  now?: () => number;
}

/** A running heap trimmer. */
export interface HeapTrim {
  /** One look at the heap (the timer calls it). */
  tick(): void;
  /** Trims run so far. */
  readonly collections: number;
  stop(): void;
}

type V8Gc = (options?: { type?: string; flavor?: string }) => void;
const v8gc = (globalThis as unknown as { gc?: V8Gc }).gc;

/** Starts the trimmer (an unref'd interval timer). */
export function startHeapTrim(options: HeapTrimOptions = {}): HeapTrim {
  const gc = options.gc ?? (v8gc ? () => v8gc({ type: "major", flavor: "last-resort" }) : undefined);
  const heapBytes = options.heapBytes ?? (() => Deno.memoryUsage().heapTotal);
  const activity = options.activity ?? (() => 0);
  const slack = options.slackBytes ?? 32 * 1024 * 1024;
  const minInterval = options.minIntervalMs ?? 30_000;
  const now = options.now ?? Date.now;
  let collections = 0;
  if (!gc) return { tick() {}, collections, stop() {} };
  let floor = heapBytes();
  let lastWork = activity();
  let lastTrim = -Infinity;
  const tick = () => {
    const work = activity();
    const busy = work !== lastWork;
    lastWork = work;
    const heap = heapBytes();
    if (heap < floor) floor = heap;
    if (busy || heap - floor <= slack || now() - lastTrim < minInterval) return;
    gc();
    collections++;
    lastTrim = now();
    floor = heapBytes();
  };
  const interval = options.intervalMs ?? 1000;
  const timer = interval > 0 ? setInterval(tick, interval) : undefined;
  if (timer !== undefined) Deno.unrefTimer(timer);
  return {
    tick,
    get collections() {
      return collections;
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
    },
  };
}
