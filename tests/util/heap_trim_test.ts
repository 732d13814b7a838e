import assert from "node:assert/strict";
import { startHeapTrim } from "../../src/util/heap_trim.ts";

const MB = 1024 * 1024;

function fake(start: number, minIntervalMs = 0) {
  const heap = { bytes: start, collections: 0, live: start, work: 0, clock: 0 };
  const trim = startHeapTrim({
    intervalMs: 0,
    slackBytes: 32 * MB,
    minIntervalMs,
    heapBytes: () => heap.bytes,
    activity: () => heap.work,
    now: () => heap.clock,
    gc: () => {
      heap.collections++;
      heap.bytes = heap.live;
    },
  });
  return { heap, trim };
}

Deno.test("heap trim: nothing while work is being done (a burst is running)", () => {
  const { heap, trim } = fake(50 * MB);
  for (let i = 0; i < 20; i++) {
    heap.bytes += 10 * MB;
    heap.work++;
    trim.tick();
  }
  assert.equal(heap.collections, 0);
});

Deno.test("heap trim: one trim once the burst is over and the heap exceeds the slack", () => {
  const { heap, trim } = fake(50 * MB);
  heap.bytes = 250 * MB;
  heap.live = 80 * MB;
  heap.work++;
  trim.tick(); // work since the last look: still busy
  trim.tick(); // quiet: trim
  trim.tick();
  assert.equal(heap.collections, 1);
  assert.equal(trim.collections, 1);
  assert.equal(heap.bytes, 80 * MB);
});

Deno.test("heap trim: a heap within the slack is left alone", () => {
  const { heap, trim } = fake(50 * MB);
  heap.bytes = 80 * MB;
  for (let i = 0; i < 5; i++) trim.tick();
  assert.equal(heap.collections, 0);
});

Deno.test("heap trim: at most one trim per minIntervalMs", () => {
  const { heap, trim } = fake(50 * MB, 30_000);
  heap.live = 50 * MB;
  for (let s = 0; s < 60; s++) {
    heap.clock = s * 1000;
    heap.bytes = 200 * MB; // grows back every second
    trim.tick();
  }
  assert.equal(heap.collections, 2); // at 0 s and at 30 s
});

Deno.test("heap trim: runs whether or not V8 exposes gc (tests run without --expose-gc)", () => {
  const trim = startHeapTrim({ intervalMs: 0, minIntervalMs: 0, heapBytes: () => 0 });
  trim.tick();
  trim.stop();
});
