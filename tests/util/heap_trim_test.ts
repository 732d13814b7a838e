import assert from "node:assert/strict";
import { startHeapTrim } from "../../src/util/heap_trim.ts";

const MB = 1024 * 1024;

function fake(start: number) {
  const heap = { used: start, collections: 0, live: start };
  const trim = startHeapTrim({
    intervalMs: 0,
    slackBytes: 32 * MB,
    quietBytes: 2 * MB,
    heapUsed: () => heap.used,
    gc: () => {
      heap.collections++;
      heap.used = heap.live;
    },
  });
  return { heap, trim };
}

Deno.test("heap trim: no collection while the heap keeps growing (a burst is running)", () => {
  const { heap, trim } = fake(50 * MB);
  for (let i = 0; i < 20; i++) {
    heap.used += 10 * MB;
    trim.tick();
  }
  assert.equal(heap.collections, 0);
});

Deno.test("heap trim: one collection once the burst is over and garbage exceeds the slack", () => {
  const { heap, trim } = fake(50 * MB);
  heap.used = 250 * MB;
  heap.live = 80 * MB;
  trim.tick(); // grew: still busy
  trim.tick(); // quiet: collect
  trim.tick();
  trim.tick();
  assert.equal(heap.collections, 1);
  assert.equal(trim.collections, 1);
  assert.equal(heap.used, 80 * MB);
});

Deno.test("heap trim: slow growth below the slack never collects; above it, once per slack", () => {
  const { heap, trim } = fake(50 * MB);
  heap.live = 50 * MB;
  for (let i = 0; i < 15; i++) {
    heap.used += 1 * MB; // quiet growth
    trim.tick();
  }
  assert.equal(heap.collections, 0); // 15 MB above the floor
  for (let i = 0; i < 20; i++) {
    heap.used += 1 * MB;
    trim.tick();
  }
  assert.equal(heap.collections, 1);
});

Deno.test("heap trim: runs whether or not V8 exposes gc (no --expose-gc in tests)", () => {
  const trim = startHeapTrim({ intervalMs: 0, gc: undefined, heapUsed: () => 1e12 });
  trim.tick();
  trim.stop();
});
