/**
 * The QueueStore contract: every backend must pass these, run by kv_store_test.ts
 * and file_store_test.ts.
 */
import assert from "node:assert/strict";
import { newQueueRecord, type QueueRecord, type QueueStore } from "../../src/queue/mod.ts";
import { ulid } from "../../src/spool/mod.ts";

/** A minimal valid record. */
export function sampleRecord(overrides: Partial<QueueRecord> = {}): QueueRecord {
  const envelope = {
    sender: "alice@example.com",
    recipients: [{ address: "bob@example.net" }],
    client: { address: "127.0.0.1", listener: "mx" },
  };
  return { ...newQueueRecord({ id: ulid(), size: 1234 }, envelope, Date.now()), ...overrides };
}

/** Registers the contract tests for one backend. */
export function queueStoreContract(name: string, open: (dir: string) => Promise<QueueStore>) {
  const withStore = async (fn: (store: QueueStore, reopen: () => Promise<QueueStore>) => Promise<void>) => {
    const dir = await Deno.makeTempDir({ prefix: "empath-queue-" });
    let store = await open(dir);
    try {
      await fn(store, async () => {
        await store.close();
        store = await open(dir);
        return store;
      });
    } finally {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    }
  };

  Deno.test(`${name}: a stored record reads back identical after reopening`, () =>
    withStore(async (store, reopen) => {
      const rec = sampleRecord({ metadata: { tag: "vip", n: 3 }, dsn: { ret: "HDRS", envid: "E1" } });
      rec.recipients[0]!.notify = ["SUCCESS", "FAILURE"];
      rec.recipients[0]!.orcpt = "rfc822;bob@example.net";
      await store.put(rec);
      assert.deepEqual(await store.get(rec.id), rec);
      const again = await reopen();
      assert.deepEqual(await again.get(rec.id), rec);
    }));

  Deno.test(`${name}: due returns only scheduled records whose time has come, earliest first`, () =>
    withStore(async (store) => {
      const now = Date.now();
      const late = sampleRecord({ nextAttemptAt: now - 1000 });
      const early = sampleRecord({ nextAttemptAt: now - 5000, status: "deferred" });
      const future = sampleRecord({ nextAttemptAt: now + 60_000 });
      const frozen = sampleRecord({ nextAttemptAt: now - 9000, status: "frozen" });
      for (const r of [late, early, future, frozen]) await store.put(r);
      assert.deepEqual((await store.due(now, 10)).map((r) => r.id), [early.id, late.id]);
      assert.deepEqual((await store.due(now, 1)).map((r) => r.id), [early.id]);
      assert.equal(await store.nextDueAt(), early.nextAttemptAt);
    }));

  Deno.test(`${name}: rescheduling moves a record in the due order and leaves no stale entry`, () =>
    withStore(async (store, reopen) => {
      const now = Date.now();
      const rec = sampleRecord({ nextAttemptAt: now - 1000 });
      await store.put(rec);
      rec.status = "deferred";
      rec.nextAttemptAt = now + 3_600_000;
      await store.put(rec);
      assert.deepEqual(await store.due(now, 10), []);
      const again = await reopen();
      assert.deepEqual(await again.due(now, 10), []);
      assert.deepEqual((await again.due(now + 3_600_000, 10)).map((r) => r.id), [rec.id]);
    }));

  Deno.test(`${name}: counts follow status changes and deletes`, () =>
    withStore(async (store, reopen) => {
      const a = sampleRecord();
      const b = sampleRecord({ status: "deferred" });
      await Promise.all([store.put(a), store.put(b)]);
      a.status = "delivering";
      await store.put(a);
      let counts = await store.counts();
      assert.equal(counts.delivering, 1);
      assert.equal(counts.deferred, 1);
      assert.equal(counts.queued, 0);
      await store.delete(b.id);
      assert.equal(await store.get(b.id), null);
      counts = await (await reopen()).counts();
      assert.equal(counts.deferred, 0);
      assert.equal(counts.delivering, 1);
    }));

  Deno.test(`${name}: many concurrent puts are all durable`, () =>
    withStore(async (store, reopen) => {
      const recs = Array.from({ length: 300 }, () => sampleRecord());
      await Promise.all(recs.map((r) => store.put(r)));
      const again = await reopen();
      assert.equal((await again.counts()).queued, 300);
      for (const r of recs.slice(0, 20)) assert.deepEqual(await again.get(r.id), r);
    }));

  Deno.test(`${name}: a record larger than one KV value (64 KiB) round-trips and shrinks back`, () =>
    withStore(async (store, reopen) => {
      const now = Date.now();
      const rec = sampleRecord({
        recipients: Array.from({ length: 2000 }, (_, i) => ({
          address: `user${i}@example.net`,
          status: "pending" as const,
          attempts: 0,
          updatedAt: now,
        })),
      });
      await store.put(rec);
      const again = await reopen();
      assert.deepEqual(await again.get(rec.id), rec);
      rec.recipients = rec.recipients.slice(0, 1);
      await again.put(rec);
      assert.deepEqual(await (await reopen()).get(rec.id), rec);
    }));

  Deno.test(`${name}: list filters by status and recipient domain and honours the limit`, () =>
    withStore(async (store) => {
      const a = sampleRecord();
      const b = sampleRecord({ status: "deferred" });
      b.recipients[0]!.address = "x@other.org";
      const c = sampleRecord();
      for (const r of [a, b, c]) await store.put(r);
      const ids = async (filter: Parameters<QueueStore["list"]>[0]) =>
        (await Array.fromAsync(store.list(filter))).map((r) => r.id).sort();
      assert.deepEqual(await ids({ status: "deferred" }), [b.id]);
      assert.deepEqual(await ids({ domain: "other.org" }), [b.id]);
      assert.deepEqual(await ids({ domain: "EXAMPLE.net" }), [a.id, c.id].sort());
      assert.equal((await ids({ limit: 2 })).length, 2);
    }));

  Deno.test(`${name}: claim returns due scheduled work only, earliest first, up to the limit`, () =>
    withStore(async (store) => {
      const now = Date.now();
      const late = sampleRecord({ nextAttemptAt: now - 1000 });
      const early = sampleRecord({ nextAttemptAt: now - 5000, status: "deferred" });
      const future = sampleRecord({ nextAttemptAt: now + 60_000 });
      const frozen = sampleRecord({ nextAttemptAt: now - 9000, status: "frozen" });
      const busy = sampleRecord({ nextAttemptAt: now - 9000, status: "delivering" });
      for (const r of [late, early, future, frozen, busy]) await store.put(r);
      const one = await store.claim({ now, limit: 1, owner: "a", leaseMs: 60_000 });
      assert.deepEqual(one.map((r) => r.id), [early.id]);
      assert.deepEqual(one[0], early);
      const rest = await store.claim({ now, limit: 10, owner: "a", leaseMs: 60_000 });
      assert.deepEqual(rest.map((r) => r.id), [late.id], "already leased records are not claimed again");
      assert.deepEqual(await store.claim({ now, limit: 10, owner: "b", leaseMs: 60_000 }), []);
      assert.deepEqual(await store.claim({ now: now + 60_000, limit: 0, owner: "b", leaseMs: 1 }), []);
    }));

  Deno.test(`${name}: two owners never both get a record while the lease holds; expiry frees it`, () =>
    withStore(async (store) => {
      const now = Date.now();
      const recs = Array.from({ length: 20 }, (_, i) => sampleRecord({ nextAttemptAt: now - 100 + i }));
      await Promise.all(recs.map((r) => store.put(r)));
      const [a, b] = await Promise.all([
        store.claim({ now, limit: 15, owner: "a", leaseMs: 1000 }),
        store.claim({ now, limit: 15, owner: "b", leaseMs: 1000 }),
      ]);
      const ids = [...a, ...b].map((r) => r.id);
      assert.equal(new Set(ids).size, ids.length, "no record claimed twice");
      const c = await store.claim({ now, limit: 20, owner: "c", leaseMs: 1000 });
      assert.equal(ids.length + c.length, 20, "every due record is claimed by someone");
      assert.deepEqual(await store.claim({ now: now + 999, limit: 20, owner: "d", leaseMs: 1000 }), []);
      const again = await store.claim({ now: now + 1000, limit: 20, owner: "d", leaseMs: 1000 });
      assert.deepEqual(again.map((r) => r.id).sort(), recs.map((r) => r.id).sort(), "expired leases are claimable");
    }));

  Deno.test(`${name}: renew extends only the owner's live leases; release frees only the owner's`, () =>
    withStore(async (store) => {
      const now = Date.now();
      const x = sampleRecord({ nextAttemptAt: now - 2 });
      const y = sampleRecord({ nextAttemptAt: now - 1 });
      await store.put(x);
      await store.put(y);
      assert.equal((await store.claim({ now, limit: 1, owner: "a", leaseMs: 1000 }))[0]?.id, x.id);
      assert.equal((await store.claim({ now, limit: 1, owner: "b", leaseMs: 1000 }))[0]?.id, y.id);
      assert.deepEqual(await store.renew([x.id, y.id, "missing"], "a", 5000, now + 500), [x.id]);
      // a's lease now runs to now + 5500; b's ran out at now + 1000.
      assert.deepEqual(await store.renew([y.id], "b", 5000, now + 1000), [], "an expired lease cannot be renewed");
      const later = await store.claim({ now: now + 2000, limit: 10, owner: "c", leaseMs: 1000 });
      assert.deepEqual(later.map((r) => r.id), [y.id], "the renewed lease still holds");
      await store.release([x.id, y.id], "b"); // b holds neither: nothing changes
      assert.deepEqual(await store.claim({ now: now + 2000, limit: 10, owner: "b", leaseMs: 1000 }), []);
      await store.release([x.id], "a");
      const freed = await store.claim({ now: now + 2000, limit: 10, owner: "b", leaseMs: 1000 });
      assert.deepEqual(freed.map((r) => r.id), [x.id], "a released lease is claimable at once");
      assert.deepEqual(await store.renew([x.id], "a", 1000, now + 2000), [], "a released lease is not held");
    }));

  Deno.test(`${name}: put keeps a lease, delete ends it, and claim sees the stored record`, () =>
    withStore(async (store) => {
      const now = Date.now();
      const rec = sampleRecord({ nextAttemptAt: now - 1 });
      await store.put(rec);
      assert.equal((await store.claim({ now, limit: 1, owner: "a", leaseMs: 1000 })).length, 1);
      rec.metadata = { touched: true };
      await store.put(rec);
      assert.deepEqual(await store.claim({ now, limit: 1, owner: "b", leaseMs: 1000 }), [], "put keeps the lease");
      assert.deepEqual(await store.renew([rec.id], "a", 1000, now), [rec.id]);
      await store.delete(rec.id);
      assert.deepEqual(await store.renew([rec.id], "a", 1000, now), [], "delete ends the lease");
      await store.put(rec); // the same id again, e.g. re-queued
      const back = await store.claim({ now, limit: 1, owner: "b", leaseMs: 1000 });
      assert.deepEqual(back, [rec]);
      rec.status = "deferred";
      rec.nextAttemptAt = now + 60_000;
      await store.put(rec);
      await store.release([rec.id], "b");
      assert.deepEqual(await store.claim({ now, limit: 1, owner: "c", leaseMs: 1000 }), [], "not due any more");
      assert.equal((await store.claim({ now: now + 60_000, limit: 1, owner: "c", leaseMs: 1000 }))[0]?.id, rec.id);
    }));

  Deno.test(`${name}: operator state survives reopening; expired entries are gone`, () =>
    withStore(async (store, reopen) => {
      const now = Date.now();
      await store.putState("freeze", true);
      await store.putState("suspend/example.com", { until: now + 60_000 }, now + 60_000);
      await store.putState("suspend/expired.example", { until: now - 1 }, now - 1);
      await store.putState("mx/a.example", { host: "10.0.0.1", port: 2525 });
      await store.putState("odd/../key with spaces.é", 1);
      store = await reopen();
      assert.equal(await store.getState("freeze"), true);
      assert.deepEqual(await store.getState("suspend/example.com"), { until: now + 60_000 });
      assert.equal(await store.getState("suspend/expired.example"), null, "expired");
      assert.equal(await store.getState("missing"), null);
      assert.equal(await store.getState("odd/../key with spaces.é"), 1);
      assert.deepEqual(await store.listState("suspend/"), [
        { key: "suspend/example.com", value: { until: now + 60_000 }, expiresAt: now + 60_000 },
      ]);
      assert.deepEqual(await store.listState("mx/"), [{
        key: "mx/a.example",
        value: { host: "10.0.0.1", port: 2525 },
      }]);
      await Promise.all([1, 2, 3, 4, 5].map((n) => store.putState("burst", [n]))); // not awaited one by one
      assert.deepEqual(await store.getState("burst"), [5], "the last put stays");
      await store.deleteState("burst");
      await store.putState("freeze", false); // replaces
      assert.equal(await store.getState("freeze"), false);
      await store.deleteState("freeze");
      await store.deleteState("never-set");
      assert.equal(await store.getState("freeze"), null);
      assert.deepEqual((await store.listState("")).map((e) => e.key), [
        "mx/a.example",
        "odd/../key with spaces.é",
        "suspend/example.com",
      ]);
      assert.equal((await store.counts()).queued, 0, "state is not a message");
      assert.deepEqual(await Array.fromAsync(store.list()), []);
    }));

  Deno.test(`${name}: writes after close are refused with a typed error`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "empath-queue-" });
    const store = await open(dir);
    await store.close();
    await assert.rejects(() => store.put(sampleRecord()), { name: "QueueStoreError", code: "QUEUE_CLOSED" });
    await assert.rejects(() => store.putState("k", 1), { name: "QueueStoreError", code: "QUEUE_CLOSED" });
    await Deno.remove(dir, { recursive: true });
  });

  Deno.test(`${name}: due and claim can take one priority level; list filters by it; stats count levels`, () =>
    withStore(async (store, reopen) => {
      const now = Date.now();
      const low = sampleRecord({ nextAttemptAt: now - 5000, priority: "low" });
      const plain = sampleRecord({ nextAttemptAt: now - 4000 });
      const critical = sampleRecord({ nextAttemptAt: now - 1000, priority: "critical" });
      for (const r of [low, plain, critical]) await store.put(r);
      assert.deepEqual((await store.due(now, 10)).map((r) => r.id), [low.id, plain.id, critical.id]);
      assert.deepEqual((await store.due(now, 10, "critical")).map((r) => r.id), [critical.id]);
      assert.deepEqual((await store.due(now, 10, "normal")).map((r) => r.id), [plain.id], "absent = normal");
      const again = await reopen();
      const claimed = await again.claim({ now, limit: 10, owner: "a", leaseMs: 1000, priority: "low" });
      assert.deepEqual(claimed.map((r) => r.id), [low.id]);
      assert.deepEqual((await Array.fromAsync(again.list({ priority: "critical" }))).map((r) => r.id), [critical.id]);
      assert.deepEqual((await again.stats()).priorities, { critical: 1, high: 0, normal: 1, low: 1 });
    }));

  Deno.test(`${name}: delivery marks are durable, per message, and pruned by age and count`, () =>
    withStore(async (store, reopen) => {
      await Promise.all([
        store.markDelivered([{ id: "A", recipient: "bob@example.com", at: 100 }]),
        store.markDelivered([{ id: "A", recipient: "eve@example.com", at: 200 }]),
        store.markDelivered([{ id: "B", recipient: "bob@example.com", at: 300 }]),
      ]);
      assert.deepEqual((await store.deliveredOf("A")).sort(), ["bob@example.com", "eve@example.com"]);
      assert.deepEqual(await store.deliveredOf("C"), []);
      let again = await reopen();
      assert.deepEqual(await again.deliveredOf("B"), ["bob@example.com"]);
      assert.equal(await again.pruneDelivered(150, 100), 1, "older than 150");
      assert.deepEqual(await again.deliveredOf("A"), ["eve@example.com"]);
      assert.equal(await again.pruneDelivered(0, 1), 1, "beyond the count, oldest first");
      again = await reopen();
      assert.deepEqual(await again.deliveredOf("A"), []);
      assert.deepEqual(await again.deliveredOf("B"), ["bob@example.com"]);
      await again.markDelivered([{ id: "D", recipient: "x@example.com", at: 400 }]);
      again = await reopen();
      assert.deepEqual(await again.deliveredOf("D"), ["x@example.com"], "appends after a prune survive");
    }));

  Deno.test(`${name}: the outbox keeps events per target, oldest first, across reopening`, () =>
    withStore(async (store, reopen) => {
      const e = (target: string, at: number) => ({ id: ulid(at), target, at, body: JSON.stringify({ at }) });
      const [a1, a2, b1] = [e("a", 1000), e("a", 2000), e("b", 500)];
      await store.outboxAdd([a2, b1]);
      await store.outboxAdd([a1]);
      assert.deepEqual(await store.outboxStats(), { depth: 3, oldestAt: 500 });
      const again = await reopen();
      assert.deepEqual(await again.outboxPeek("a", 10), [a1, a2]);
      assert.deepEqual(await again.outboxPeek("a", 1), [a1]);
      await again.outboxRemove([a1.id, "01JD3V6Y8Q3M0K2V9X7B5N4C1R"]);
      assert.deepEqual(await again.outboxPeek("a", 10), [a2]);
      assert.deepEqual(await again.outboxPeek("b", 10), [b1]);
      const third = await reopen();
      assert.deepEqual(await third.outboxStats(), { depth: 2, oldestAt: 500 });
    }));
}
