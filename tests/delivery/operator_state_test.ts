/**
 * Durable operator state: write-through to the store's state entries, restore at start,
 * and releasing what a suspension or a rate limit held.
 */
import assert from "node:assert/strict";
import { createLifecycle } from "../../src/delivery/lifecycle.ts";
import { DestinationLimits } from "../../src/delivery/limits.ts";
import { createOperator } from "../../src/delivery/operator.ts";
import { createOperatorState } from "../../src/delivery/operator_state.ts";
import { createOverrides } from "../../src/delivery/overrides.ts";
import type { StateEntry, StateValue } from "../../src/queue/mod.ts";
import { log, manualClock, memorySpool, memoryStore, queuedRecord, recordedEvents, testConfig } from "./fakes.ts";

function stateStore(entries = new Map<string, StateEntry>()) {
  return {
    entries,
    getState: (key: string) => Promise.resolve(entries.get(key)?.value ?? null),
    putState: (key: string, value: StateValue, expiresAt?: number) =>
      Promise.resolve(void entries.set(key, expiresAt === undefined ? { key, value } : { key, value, expiresAt })),
    listState: (prefix: string) => Promise.resolve([...entries.values()].filter((e) => e.key.startsWith(prefix))),
    deleteState: (key: string) => Promise.resolve(void entries.delete(key)),
  };
}

function setup(state = stateStore()) {
  const clock = manualClock();
  const store = memoryStore();
  const spool = memorySpool();
  const { events } = recordedEvents();
  const limits = new DestinationLimits(() => ({ maxConnections: 1, failures: 5, cooldownMs: 1000 }), clock);
  const config = testConfig();
  const overrides = createOverrides(config);
  let frozen = false;
  const scheduler = { schedule: () => {}, running: () => undefined, setFrozen: (f: boolean) => void (frozen = f) };
  const operator = createOperator({
    store,
    spool,
    log,
    clock,
    limits,
    lifecycle: createLifecycle({ store, spool, log, events }),
    scheduler,
  });
  const ops = createOperatorState({
    store: state,
    log,
    clock,
    limits,
    overrides,
    scheduler,
    operator,
    lastReplies: () => new Map([["dead.example", { reply: "421 try later", at: clock.now() }]]),
  });
  return { clock, store, state, limits, overrides, ops, frozen: () => frozen };
}

Deno.test("resume releases mail the suspension held; mail in a longer backoff keeps its time", async () => {
  const t = setup();
  const until = t.clock.now() + 3_600_000;
  await t.ops.suspend("x.example", until);
  assert.deepEqual(t.state.entries.get("suspend/x.example"), {
    key: "suspend/x.example",
    value: until,
    expiresAt: until,
  });
  const held = queuedRecord(t.clock.now(), ["a@x.example"]);
  held.nextAttemptAt = until; // what the attempt runner sets for a suspended destination
  const backoff = queuedRecord(t.clock.now(), ["b@x.example"]);
  backoff.status = "deferred";
  backoff.nextAttemptAt = until + 3_600_000;
  await t.store.put(held);
  await t.store.put(backoff);
  t.clock.advance(1000);
  await t.ops.suspend("x.example", 0);
  assert.equal(t.state.entries.has("suspend/x.example"), false);
  assert.equal(t.store.records.get(held.id)!.nextAttemptAt, t.clock.now(), "due now");
  assert.equal(t.store.records.get(backoff.id)!.nextAttemptAt, until + 3_600_000);
});

Deno.test("a rate-limit change releases mail the old rate held", async () => {
  const t = setup();
  await t.ops.setRate("r.example", 0.01); // one message per 100 s
  const held = queuedRecord(t.clock.now(), ["a@r.example"]);
  held.nextAttemptAt = t.clock.now() + 90_000;
  await t.store.put(held);
  await t.ops.setRate("r.example", 50);
  assert.equal(t.store.records.get(held.id)!.nextAttemptAt, t.clock.now());
  assert.equal(t.state.entries.get("rate/r.example")?.value, 50);
  await t.ops.setRate("r.example", 0);
  assert.equal(t.state.entries.has("rate/r.example"), false);
});

Deno.test("restore brings back the freeze, suspensions, overrides, rates and last errors", async () => {
  const first = setup();
  await first.ops.setFrozen(true);
  await first.ops.suspend("s.example", first.clock.now() + 60_000);
  await first.ops.setOverride("M.example", { host: "10.0.0.9", port: 2525 });
  await first.ops.setRate("r.example", 3);
  await first.ops.flushReplies();
  const second = setup(first.state);
  await second.ops.restore();
  assert.equal(second.frozen(), true);
  assert.deepEqual(second.limits.suspensions().map((s) => s.domain), ["s.example"]);
  assert.deepEqual(second.overrides.all().get("m.example"), { host: "10.0.0.9", port: 2525 });
  assert.equal(second.limits.rateFor("r.example"), 3);
  assert.equal(second.ops.lastReplies().get("dead.example")?.reply, "421 try later");
  await second.ops.setFrozen(false);
  assert.equal(first.state.entries.has("freeze"), false);
  assert.equal(await second.ops.removeOverride("m.example"), true);
  assert.equal(first.state.entries.has("mx/m.example"), false);
});
