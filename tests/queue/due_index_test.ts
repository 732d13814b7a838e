import assert from "node:assert/strict";
import { DueHeap } from "../../src/queue/due_heap.ts";
import { QueueIndex } from "../../src/queue/index_cache.ts";
import type { QueueRecord } from "../../src/queue/types.ts";

const record = (id: string, nextAttemptAt: number, status: QueueRecord["status"] = "queued") =>
  ({
    id,
    status,
    nextAttemptAt,
    receivedAt: 0,
    recipients: [{ address: "bob@example.net", status: "pending" }],
  }) as QueueRecord;

const id = (i: number) => `01JD3V6Y8Q${String(i).padStart(16, "0")}`;

/** Work (heap comparisons) of one dueIds + nextDueAt with `n` scheduled records, 10 of them due. */
function workAt(n: number): number {
  const index = new QueueIndex({ ordered: true });
  for (let i = 0; i < n; i++) index.set(record(id(i), i < 10 ? 100 + i : 1_000_000 + i));
  const before = index.orderWork;
  assert.equal(index.dueIds(1_000, 10).length, 10);
  assert.equal(index.nextDueAt(), 100);
  return index.orderWork - before;
}

Deno.test("file index: due() work grows with log n, not n (1,000 vs 100,000 queued)", () => {
  const small = workAt(1_000);
  const large = workAt(100_000);
  // A scan would be 100x; a heap is ~log2(100,000)/log2(1,000) = 1.7x.
  assert.ok(large < small * 3, `work ${small} at 1,000 vs ${large} at 100,000`);
  assert.ok(large < 1_000, `work ${large} at 100,000 should be a few hundred comparisons`);
});

Deno.test("file index: dueIds is earliest first, skips stale, rescheduled, unscheduled and skipped ids", () => {
  const index = new QueueIndex({ ordered: true });
  index.set(record(id(1), 30));
  index.set(record(id(2), 10));
  index.set(record(id(3), 20));
  index.set(record(id(4), 5));
  index.set(record(id(2), 40)); // rescheduled later: its pair at 10 is stale
  index.set(record(id(3), 20, "frozen")); // no longer scheduled
  index.delete(id(4));
  assert.deepEqual(index.dueIds(100, 10), [id(1), id(2)]);
  assert.deepEqual(index.dueIds(35, 10), [id(1)]);
  assert.deepEqual(index.dueIds(100, 10, undefined, (x) => x === id(1)), [id(2)]);
  assert.equal(index.nextDueAt(), 30);
  index.set(record(id(2), 10)); // back to 10: one current pair, no duplicate
  index.set(record(id(2), 40));
  index.set(record(id(2), 10));
  assert.deepEqual(index.dueIds(100, 10), [id(2), id(1)]);
  assert.deepEqual(index.dueIds(100, 1), [id(2)]);
  // the same answers as the unordered (scanning) index
  const plain = new QueueIndex();
  for (const [k, e] of index.entries) plain.set(record(k, e.due, e.status));
  assert.deepEqual(plain.dueIds(100, 10), index.dueIds(100, 10));
  assert.equal(plain.nextDueAt(), index.nextDueAt());
});

Deno.test("file index: stale pairs are compacted, so the heap stays near the queue size", () => {
  const index = new QueueIndex({ ordered: true });
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 1_000; i++) index.set(record(id(i), round * 10_000 + i));
  }
  assert.ok(index.orderSize <= 2 * 1_000 + 1_024, `heap holds ${index.orderSize} pairs for 1,000 records`);
  assert.deepEqual(index.dueIds(190_004, 10), [0, 1, 2, 3, 4].map(id));
});

Deno.test("DueHeap matches a sorted list under random pushes and takes", () => {
  const heap = new DueHeap();
  const current = new Map<string, number>();
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let step = 0; step < 2_000; step++) {
    const key = `k${Math.floor(rand() * 200)}`;
    const due = Math.floor(rand() * 1_000);
    current.set(key, due);
    heap.push(due, key);
    if (step % 50 === 0) {
      const now = Math.floor(rand() * 1_000);
      const want = [...current].filter(([, d]) => d <= now).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, 20).map(([k]) => k);
      assert.deepEqual(heap.take(now, 20, (d, k) => current.get(k) === d), want);
    }
  }
});
