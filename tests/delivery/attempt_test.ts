/**
 * One delivery attempt with a fake transport and a manual clock: backoff, a mix of
 * per-recipient replies, the circuit breaker and expiry, all without sockets or waiting.
 */
import assert from "node:assert/strict";
import { createAttemptRunner } from "../../src/delivery/attempt.ts";
import { createLifecycle } from "../../src/delivery/lifecycle.ts";
import { DestinationLimits } from "../../src/delivery/limits.ts";
import type { TransportJob, TransportResult } from "../../src/delivery/mod.ts";
import {
  log,
  manualClock,
  memorySpool,
  memoryStore,
  queuedRecord,
  recordedEvents,
  replyByLocalPart,
  scriptedTransport,
  testConfig,
} from "./fakes.ts";

function setup(toml: string, answer: (job: TransportJob, call: number) => TransportResult) {
  const config = testConfig(toml);
  const clock = manualClock();
  const store = memoryStore();
  const spool = memorySpool();
  const { seen, events } = recordedEvents();
  const transport = scriptedTransport(answer);
  const limits = new DestinationLimits((_domain) => ({
    maxConnections: 10,
    failures: config().delivery.circuit_breaker.failures,
    cooldownMs: config().delivery.circuit_breaker.cooldown,
  }), clock);
  const lifecycle = createLifecycle({ store, spool, log, events });
  const runner = createAttemptRunner({
    config,
    store,
    spool,
    log,
    limits,
    lifecycle,
    clock,
    transportFor: () => transport,
    sleep: () => Promise.reject(new Error("no sleeping in unit tests")),
  });
  /** Queues a record and runs one attempt for it from the store. */
  const attempt = async (id: string) => await runner.deliverMessage((await store.get(id))!, true);
  return { config, clock, store, spool, seen, transport, limits, runner, attempt };
}

const deferAll = (job: TransportJob): TransportResult => ({
  server: "mx.fake:25",
  recipients: job.message.recipients.map(({ address }) => ({
    address,
    code: 451,
    reply: "451 4.3.0 try again later",
    outcome: "deferred" as const,
  })),
});

const deliverAll = (job: TransportJob): TransportResult => ({
  server: "mx.fake:25",
  recipients: job.message.recipients.map(({ address }) => ({
    address,
    code: 250,
    reply: "250 ok",
    outcome: "delivered" as const,
  })),
});

const unreachable = (job: TransportJob): TransportResult => ({
  server: "mx.fake:25",
  connectionFailed: true,
  error: "connection refused",
  recipients: job.message.recipients.map(({ address }) => ({
    address,
    reply: "451 4.4.1 No usable mail exchanger",
    outcome: "deferred" as const,
  })),
});

Deno.test("after each temporary failure the next attempt waits the base delay, doubling up to the maximum", async () => {
  const t = setup(`base_delay = "1m"\nfactor = 2\nmax_delay = "3m"`, deferAll);
  const rec = queuedRecord(t.clock.now(), ["bob@example.net"]);
  await t.store.put(rec);
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    await t.attempt(rec.id);
    const stored = t.store.records.get(rec.id)!;
    assert.equal(stored.status, "deferred");
    delays.push(stored.nextAttemptAt - t.clock.now());
    t.clock.advance(stored.nextAttemptAt - t.clock.now());
  }
  assert.deepEqual(delays, [60_000, 120_000, 180_000, 180_000]);
  assert.equal(t.store.records.get(rec.id)!.recipients[0]!.attempts, 4);
});

Deno.test("250, 451 and 550 on one connection deliver, defer and fail their recipients; the failure reaches the DSN when the message finishes", async () => {
  const t = setup(`base_delay = "5m"`, (job, call) => call === 1 ? replyByLocalPart(job) : deliverAll(job));
  const rec = queuedRecord(t.clock.now(), ["ok@example.net", "later@example.net", "bad@example.net"]);
  await t.store.put(rec);

  await t.attempt(rec.id);
  assert.equal(t.transport.jobs.length, 1, "one destination, one transport job");
  assert.deepEqual(t.transport.jobs[0]!.message.recipients.map((r) => r.address), [
    "ok@example.net",
    "later@example.net",
    "bad@example.net",
  ]);
  const stored = t.store.records.get(rec.id)!;
  assert.deepEqual(stored.recipients.map((r) => [r.address, r.status, r.lastCode]), [
    ["ok@example.net", "delivered", 250],
    ["later@example.net", "deferred", 451],
    ["bad@example.net", "failed", 550],
  ]);
  assert.equal(stored.status, "deferred");
  assert.equal(stored.nextAttemptAt, t.clock.now() + 300_000, "the deferred recipient is rescheduled");
  assert.deepEqual(t.seen.map((e) => e.kind), ["attempt", "deferred"]);
  assert.equal(t.seen[0]!.attempt!.result.length, 3);
  assert.equal(t.runner.lastReplies().get("example.net")?.reply, "550 failed");

  // The retry carries only the deferred recipient; now it is delivered and the message is finished.
  t.clock.advance(300_000);
  await t.attempt(rec.id);
  assert.deepEqual(t.transport.jobs[1]!.message.recipients.map((r) => r.address), ["later@example.net"]);
  assert.deepEqual(t.seen.map((e) => e.kind), ["attempt", "deferred", "attempt", "finished"]);
  const finished = t.seen[3]!.record!;
  assert.equal(finished.status, "delivered");
  assert.deepEqual(finished.recipients.map((r) => [r.address, r.status, r.lastReply]), [
    ["ok@example.net", "delivered", "250 delivered"],
    ["later@example.net", "delivered", "250 ok"],
    ["bad@example.net", "failed", "550 failed"],
  ], "the finished event (which sends the DSN) sees the 550");
  assert.equal(t.store.records.has(rec.id), false, "state removed");
  assert.deepEqual(t.spool.deleted, [rec.id], "data removed");
});

Deno.test("recipients of different domains are separate transport jobs in the same attempt", async () => {
  const t = setup("", replyByLocalPart);
  const rec = queuedRecord(t.clock.now(), ["ok@a.example", "ok2@b.example", "ok3@A.example"]);
  await t.store.put(rec);
  await t.attempt(rec.id);
  assert.deepEqual(
    t.transport.jobs.map((j) => [j.domain, j.message.recipients.map((r) => r.address)]).sort(),
    [["a.example", ["ok@a.example", "ok3@A.example"]], ["b.example", ["ok2@b.example"]]],
  );
  assert.equal(t.store.records.has(rec.id), false);
});

Deno.test("the circuit breaker opens after repeated connection failures, half-opens after its cool-down and closes on success", async () => {
  let reachable = false;
  const t = setup(
    `[delivery.circuit_breaker]\nfailures = 2\ncooldown = "1m"`,
    (job) => reachable ? replyByLocalPart(job) : unreachable(job),
  );
  const first = queuedRecord(t.clock.now(), ["ok@down.example"]);
  const second = queuedRecord(t.clock.now(), ["ok2@down.example"]);
  const third = queuedRecord(t.clock.now(), ["ok3@down.example"]);
  for (const r of [first, second, third]) await t.store.put(r);

  await t.attempt(first.id);
  assert.equal(t.limits.state("down.example").circuit, "closed");
  await t.attempt(second.id);
  assert.equal(t.limits.state("down.example").circuit, "open");
  assert.equal(t.limits.state("down.example").lastError, "connection refused");

  // While open, the destination is not tried: the message is held until the breaker's cool-down ends.
  await t.attempt(third.id);
  assert.equal(t.transport.jobs.length, 2);
  const held = t.store.records.get(third.id)!;
  assert.equal(held.nextAttemptAt, t.clock.now() + 60_000);
  assert.equal(held.recipients[0]!.attempts, 0, "holding is not an attempt");

  t.clock.advance(60_000);
  assert.equal(t.limits.state("down.example").circuit, "half-open");
  reachable = true;
  await t.attempt(third.id);
  assert.equal(t.transport.jobs.length, 3, "one probe went through");
  assert.equal(t.limits.state("down.example").circuit, "closed");
  assert.equal(t.store.records.has(third.id), false, "delivered");
});

Deno.test("a message older than max_queue_lifetime fails its pending recipients without an attempt", async () => {
  const t = setup(`[delivery]\nmax_queue_lifetime = "1h"`, replyByLocalPart);
  const rec = queuedRecord(t.clock.now(), ["ok@example.net", "ok2@example.net"]);
  rec.recipients[1]!.status = "delivered";
  rec.recipients[0]!.lastReply = "451 4.3.0 busy";
  await t.store.put(rec);

  t.clock.advance(3_601_000);
  await t.attempt(rec.id);
  assert.equal(t.transport.jobs.length, 0, "no transport job");
  assert.deepEqual(t.seen.map((e) => [e.kind, e.recipients, e.reason]), [
    ["failedWithoutAttempt", ["ok@example.net"], "expired"],
    ["finished", undefined, undefined],
  ]);
  assert.equal(t.store.records.has(rec.id), false);
  assert.deepEqual(t.spool.deleted, [rec.id]);
});

Deno.test("a record frozen in the store is left alone; a fresh record from intake is used as handed over", async () => {
  const t = setup("", replyByLocalPart);
  const rec = queuedRecord(t.clock.now(), ["ok@example.net"]);
  rec.status = "frozen";
  await t.store.put(rec);
  await t.runner.deliverMessage(queuedRecord(t.clock.now(), ["x@example.net"]), true); // fresh: used as is
  assert.equal(t.transport.jobs.length, 1);
  await t.runner.deliverMessage({ ...rec, status: "queued" }); // not fresh: the stored (frozen) version counts
  assert.equal(t.transport.jobs.length, 1);
  assert.equal(t.store.records.get(rec.id)!.status, "frozen");
});
