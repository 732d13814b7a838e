/**
 * Priority: the scheduler's weighted pick, the per-destination gate, and the engine
 * sending a critical message ahead of 5,000 low ones queued earlier for the same slow
 * destination (real Deno KV store, a transport that takes 5 ms per message over 2 connections).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseConfig } from "../../src/config/mod.ts";
import { createConnectionPool, createDeliveryEngine, createResolver } from "../../src/delivery/mod.ts";
import { createPriorityPicker } from "../../src/delivery/scheduler.ts";
import { openKvStore, type Priority, priorityOf } from "../../src/queue/mod.ts";
import { log, memorySpool, queuedRecord } from "./fakes.ts";

Deno.test("the priority picker serves higher levels first and gives lower ones a bounded share", () => {
  const pick = createPriorityPicker();
  const counts: Record<string, number> = {};
  for (let i = 0; i < 850; i++) {
    const p = pick(() => true)!;
    counts[p] = (counts[p] ?? 0) + 1;
  }
  assert.deepEqual(counts, { critical: 640, high: 160, normal: 40, low: 10 });
  assert.equal(pick((p) => p === "low"), "low", "alone, low gets every start");
  assert.equal(pick(() => false), undefined);
  const first = createPriorityPicker();
  assert.equal(first((p) => p !== "critical"), "high");
});

Deno.test("priority comes from the user, then the listener; default normal", () => {
  const config = parseConfig(
    `[[listeners]]\nname = "bulk"\naddress = "127.0.0.1:2525"\npriority = "low"\n` +
      `[[listeners]]\naddress = "127.0.0.1:2526"\n[queue]\npriority_users = { "ops" = "critical" }\n`,
    "t.toml",
  );
  const client = (listener: string, user?: string) => ({ client: { listener, user, address: "127.0.0.1" } });
  assert.equal(priorityOf(config, client("bulk")), "low");
  assert.equal(priorityOf(config, client("bulk", "ops")), "critical");
  assert.equal(priorityOf(config, client("mx@127.0.0.1:2526")), "normal");
});

Deno.test("a critical message leaves before 5,000 low ones queued earlier for the same slow destination", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-priority-" });
  const store = await openKvStore(join(dir, "queue.kv"));
  const config = parseConfig(
    `[delivery]\nconcurrency = 20\n[delivery.domains."slow.example"]\nmax_connections = 2\n`,
    "t.toml",
  );
  const order: Priority[] = [];
  const levels = new Map<string, Priority>();
  const criticalSent = Promise.withResolvers<number>();
  const engine = createDeliveryEngine({
    config: () => config,
    store,
    spool: memorySpool() as never,
    hostname: "prio.test",
    log,
    resolver: createResolver(),
    pool: createConnectionPool({ maxPerDestination: 2, idleTimeoutMs: 1000, maxMessagesPerConnection: 10 }),
    transportFor: () => ({
      kind: "slow",
      async deliver(job) {
        await new Promise((r) => setTimeout(r, 5));
        const level = levels.get(job.id) ?? "normal";
        order.push(level);
        if (level === "critical") criticalSent.resolve(order.length);
        return {
          recipients: job.message.recipients.map((r) => ({
            address: r.address,
            outcome: "delivered" as const,
            reply: "250 ok",
          })),
        };
      },
    }),
  });
  try {
    const start = Date.now() - 60_000;
    const lows = Array.from({ length: 5000 }, (_, i) => {
      const r = queuedRecord(start + i, [`user${i}@slow.example`]);
      r.priority = "low";
      levels.set(r.id, "low");
      return r;
    });
    await Promise.all(lows.map((r) => store.put(r)));
    engine.start();
    while (order.length < 50) await new Promise((r) => setTimeout(r, 10));
    const critical = queuedRecord(Date.now(), ["ceo@slow.example"]);
    critical.priority = "critical";
    levels.set(critical.id, "critical");
    await store.put(critical); // found by the next due scan, like mail re-prioritized by the operator
    const position = await criticalSent.promise;
    const lowsBefore = position - 1;
    console.log(`critical sent as #${position}; ${lowsBefore - 50} low messages left in between after it was queued`);
    assert.ok(lowsBefore < 50 + 60, `critical waited for ${lowsBefore} low messages`);
    assert.ok(lowsBefore < 5000);
  } finally {
    await engine.stop(5000);
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
