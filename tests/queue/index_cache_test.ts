import assert from "node:assert/strict";
import { QueueIndex } from "../../src/queue/index_cache.ts";
import type { MessageStatus, Priority } from "../../src/queue/mod.ts";

Deno.test("dueIds keeps the earliest `limit` due entries in order, like a full sort", () => {
  const index = new QueueIndex();
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const statuses: MessageStatus[] = ["queued", "deferred", "delivered"];
  const levels: Priority[] = ["critical", "high", "normal", "low"];
  for (let i = 0; i < 3000; i++) {
    index.entries.set(`id${String(i).padStart(5, "0")}`, {
      status: statuses[Math.floor(rnd() * 3)]!,
      due: Math.floor(rnd() * 500), // many ties: the id breaks them
      parts: 1,
      receivedAt: 0,
      domains: [],
      priority: levels[Math.floor(rnd() * 4)]!,
    });
  }
  const full = (now: number, priority?: Priority) =>
    [...index.entries].filter(([, e]) =>
      e.due <= now && e.status !== "delivered" && (!priority || e.priority === priority)
    ).sort(([a, x], [b, y]) => x.due - y.due || (a < b ? -1 : 1)).map(([id]) => id);
  for (const [now, limit, level] of [[250, 10], [499, 100], [100, 1], [300, 50, "low"], [499, 5000]] as const) {
    assert.deepEqual(index.dueIds(now, limit, level), full(now, level).slice(0, limit), `${now} ${limit} ${level}`);
  }
  assert.deepEqual(index.dueIds(499, 0), []);
});
