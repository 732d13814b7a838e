/**
 * Gives memory back after a burst. V8 collects the old generation only when it reaches a
 * limit that grows with the heap, and its memory reducer waits ~30 s of idleness, so right
 * after 100,000 messages the daemon held ~150 MB of garbage for half a minute. This timer
 * looks at the heap once a second; when the heap has stopped growing (a burst is over) and
 * holds more than `slackBytes` above what the last collection left, it runs one full
 * collection. While mail keeps arriving it does nothing (V8's own collector runs then).
 *
 * It works when the daemon runs with `--v8-flags=--expose-gc` (the `start` and `compile`
 * tasks do); without it, {@link startHeapTrim} returns a no-op.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startHeapTrim } from "./heap_trim.ts"; // @ts-ignore deno#26900
 *
 * let used = 10_000_000;
 * let collections = 0;
 * const trim = startHeapTrim({
 *   intervalMs: 0, // ticks only by hand here
 *   slackBytes: 1_000_000,
 *   heapUsed: () => used,
 *   gc: () => void (collections++, used = 10_000_000),
 * });
 * used = 20_000_000;
 * trim.tick(); // grew since the last look: a burst may still run
 * trim.tick(); // quiet and 10 MB above the floor: collect
 * assert.equal(collections, 1);
 * trim.stop();
 * ```
 * @module
 */

/** Options of {@link startHeapTrim}. */
export interface HeapTrimOptions {
  /** How often to look (default 1000 ms; 0 = no timer, {@link HeapTrim.tick} by hand). */
  intervalMs?: number;
  /** Garbage tolerated above the last collection's result (default 32 MiB). */
  slackBytes?: number;
  /** Growth between two looks that still counts as quiet (default 2 MiB). */
  quietBytes?: number;
  /** Heap in use (default `Deno.memoryUsage().heapUsed`). */
  heapUsed?: () => number;
  /** A full collection (default V8's `gc`, present with `--expose-gc`). */
  gc?: () => void;
}

/** A running heap trimmer. */
export interface HeapTrim {
  /** One look at the heap (the timer calls it). */
  tick(): void;
  /** Full collections run so far. */
  readonly collections: number;
  stop(): void;
}

const v8gc = (globalThis as unknown as { gc?: (options?: { type?: string }) => void }).gc;

/** Starts the trimmer (an unref'd interval timer). */
export function startHeapTrim(options: HeapTrimOptions = {}): HeapTrim {
  const gc = options.gc ?? (v8gc ? () => v8gc({ type: "major" }) : undefined);
  const heapUsed = options.heapUsed ?? (() => Deno.memoryUsage().heapUsed);
  const slack = options.slackBytes ?? 32 * 1024 * 1024;
  const quiet = options.quietBytes ?? 2 * 1024 * 1024;
  let collections = 0;
  if (!gc) return { tick() {}, collections, stop() {} };
  let floor = heapUsed();
  let last = floor;
  const tick = () => {
    const used = heapUsed();
    const grew = used - last;
    last = used;
    if (used < floor) floor = used;
    if (grew > quiet || used - floor <= slack) return;
    gc();
    collections++;
    floor = last = heapUsed();
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
