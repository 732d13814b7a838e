/**
 * Operator actions against an in-memory store and a stub scheduler, with a manual clock.
 */
import assert from "node:assert/strict";
import { createLifecycle } from "../../src/delivery/lifecycle.ts";
import { DestinationLimits } from "../../src/delivery/limits.ts";
import { createOperator } from "../../src/delivery/operator.ts";
import { log, manualClock, memorySpool, memoryStore, queuedRecord, recordedEvents } from "./fakes.ts";

function setup() {
  const clock = manualClock();
  const store = memoryStore();
  const spool = memorySpool();
  const { seen, events } = recordedEvents();
  const scans: number[] = [];
  const running = new Map<string, Promise<void>>();
  const limits = new DestinationLimits(() => ({ maxConnections: 1, failures: 5, cooldownMs: 1000 }), clock);
  const operator = createOperator({
    store,
    spool,
    log,
    clock,
    limits,
    lifecycle: createLifecycle({ store, spool, log, events }),
    scheduler: { schedule: (ms) => void scans.push(ms), running: (id) => running.get(id) },
  });
  return { clock, store, spool, seen, scans, running, limits, operator };
}

Deno.test("retry-now makes waiting messages due at the current time and triggers a scan; frozen ones stay", async () => {
  const t = setup();
  const deferred = queuedRecord(t.clock.now(), ["a@x.example"]);
  deferred.status = "deferred";
  deferred.nextAttemptAt = t.clock.now() + 3_600_000;
  const frozen = queuedRecord(t.clock.now(), ["b@y.example"]);
  frozen.status = "frozen";
  await t.store.put(deferred);
  await t.store.put(frozen);
  t.clock.advance(5000);
  assert.equal(await t.operator.retryNow({ all: true }), 1);
  assert.equal(t.store.records.get(deferred.id)!.nextAttemptAt, t.clock.now());
  assert.equal(t.store.records.get(frozen.id)!.status, "frozen");
  assert.ok(t.scans.includes(0));
  assert.equal(await t.operator.retryNow({}), 0, "no filter selects nothing");
});

Deno.test("freeze then unfreeze restores the previous status and makes the message due", async () => {
  const t = setup();
  const rec = queuedRecord(t.clock.now(), ["a@x.example"]);
  rec.status = "deferred";
  rec.nextAttemptAt = t.clock.now() + 60_000;
  await t.store.put(rec);
  assert.equal(await t.operator.freeze({ domain: "x.example" }), 1);
  assert.equal(t.store.records.get(rec.id)!.status, "frozen");
  assert.equal(await t.operator.freeze({ id: rec.id }), 0, "already frozen");
  t.clock.advance(1000);
  assert.equal(await t.operator.unfreeze({ id: rec.id }), 1);
  const back = t.store.records.get(rec.id)!;
  assert.deepEqual([back.status, back.frozenFrom, back.nextAttemptAt], ["deferred", undefined, t.clock.now()]);
});

Deno.test("bounce waits for a running delivery, then fails the pending recipients and finishes the message", async () => {
  const t = setup();
  const rec = queuedRecord(t.clock.now(), ["a@x.example", "b@x.example"]);
  rec.recipients[0]!.status = "delivered";
  await t.store.put(rec);
  let finishRun!: () => void;
  t.running.set(rec.id, new Promise<void>((r) => finishRun = r));
  const bouncing = t.operator.bounce({ id: rec.id });
  await Promise.resolve();
  assert.equal(t.seen.length, 0, "nothing happens while the delivery runs");
  finishRun();
  assert.equal(await bouncing, 1);
  assert.deepEqual(t.seen.map((e) => [e.kind, e.recipients, e.reason]), [
    ["failedWithoutAttempt", ["b@x.example"], "bounced by operator"],
    ["finished", undefined, undefined],
  ]);
  const final = t.seen[1]!.record!;
  assert.equal(final.status, "delivered", "one recipient was delivered before");
  assert.match(final.recipients[1]!.lastReply!, /^5\.0\.0 Returned to the sender/);
  assert.equal(t.store.records.has(rec.id), false);
  assert.deepEqual(t.spool.deleted, [rec.id]);
});

Deno.test("delete removes state and data, and reports a missing message", async () => {
  const t = setup();
  const rec = queuedRecord(t.clock.now(), ["a@x.example"]);
  await t.store.put(rec);
  assert.equal(await t.operator.deleteMessage(rec.id), true);
  assert.equal(t.store.records.has(rec.id), false);
  assert.deepEqual(t.spool.deleted, [rec.id]);
  assert.equal(await t.operator.deleteMessage(rec.id), false);
});

Deno.test("a suspension holds a destination until it ends; lifting it triggers a scan", () => {
  const t = setup();
  t.operator.suspend("x.example", t.clock.now() + 60_000);
  const held = t.limits.tryAcquire("x.example", t.clock.now());
  assert.equal(!held.ok && held.reason, "suspended");
  assert.deepEqual(t.scans, []);
  t.operator.suspend("x.example", 0);
  assert.deepEqual(t.scans, [0]);
  assert.ok(t.limits.tryAcquire("x.example", t.clock.now()).ok);
});
