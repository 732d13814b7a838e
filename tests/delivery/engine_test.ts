/**
 * The delivery engine in-process, with a real spool, a real Deno KV store and a real
 * SMTP sink: the operations the control plane calls (freeze, unfreeze, retry now,
 * delete) and the orphan sweep.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { parseConfig } from "../../src/config/mod.ts";
import { createConnectionPool, createDeliveryEngine, createResolver } from "../../src/delivery/mod.ts";
import { openKvStore, type QueueRecord } from "../../src/queue/mod.ts";
import { openSpool, ulid } from "../../src/spool/mod.ts";
import { startScriptSink } from "../helpers/script_sink.ts";
import { sampleRecord } from "../queue/store_contract.ts";

async function setup(extraToml = "") {
  const dir = await Deno.makeTempDir({ prefix: "empath-engine-" });
  const sink = await startScriptSink();
  const config = parseConfig(
    `[delivery.retry]\nbase_delay = "1h"\n[delivery.domains."e.test"]\nmx_override = "127.0.0.1:${sink.port}"\n${extraToml}`,
    "test.toml",
  );
  const spool = await openSpool(join(dir, "spool"));
  const store = await openKvStore(join(dir, "queue.kv"));
  const engine = createDeliveryEngine({
    config: () => config,
    store,
    spool,
    hostname: "engine.test",
    log: getLogger(["empath", "test"]),
    resolver: createResolver(),
    pool: createConnectionPool({ maxPerDestination: 2, idleTimeoutMs: 1000, maxMessagesPerConnection: 10 }),
  });
  const queue = async (overrides: Partial<QueueRecord> = {}) => {
    const w = await spool.create();
    await w.write(new TextEncoder().encode("Subject: engine\r\n\r\nbody\r\n"));
    await w.commit();
    const rec = sampleRecord({ id: w.id, size: w.bytes, ...overrides });
    rec.recipients[0]!.address = "bob@e.test";
    await store.put(rec);
    return rec;
  };
  return {
    spool,
    store,
    engine,
    sink,
    queue,
    async close() {
      await engine.stop(1000);
      await store.close();
      await sink.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const until = async (what: () => Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 25));
  }
};

Deno.test("a frozen message is not delivered until it is unfrozen", async () => {
  const t = await setup();
  try {
    const rec = await t.queue();
    assert.equal(await t.engine.freeze({ id: rec.id }), 1);
    assert.equal((await t.store.get(rec.id))!.status, "frozen");
    t.engine.start();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await t.sink.messages()).length, 0);
    assert.equal(await t.engine.unfreeze({ id: rec.id }), 1);
    await t.sink.waitFor(1);
    await until(async () => (await t.store.get(rec.id)) === null);
    assert.equal(await t.spool.exists(rec.id), false, "delivered data is removed");
  } finally {
    await t.close();
  }
});

Deno.test("retry-now makes a deferred message due at once; a global freeze holds everything", async () => {
  const t = await setup();
  try {
    const rec = await t.queue({ status: "deferred", nextAttemptAt: Date.now() + 3_600_000 });
    t.engine.setFrozen(true);
    t.engine.start();
    assert.equal(await t.engine.retryNow({ all: true }), 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await t.sink.messages()).length, 0, "frozen engine delivers nothing");
    t.engine.setFrozen(false);
    await t.sink.waitFor(1);
    await until(async () => (await t.store.get(rec.id)) === null);
  } finally {
    await t.close();
  }
});

Deno.test("deleting a message removes its state and data", async () => {
  const t = await setup();
  try {
    const rec = await t.queue({ status: "deferred", nextAttemptAt: Date.now() + 3_600_000 });
    assert.equal(await t.engine.deleteMessage(rec.id), true);
    assert.equal(await t.store.get(rec.id), null);
    assert.equal(await t.spool.exists(rec.id), false);
    assert.equal(await t.engine.deleteMessage(rec.id), false);
  } finally {
    await t.close();
  }
});

Deno.test("the orphan sweep removes old data without queue state and keeps everything else", async () => {
  const t = await setup();
  try {
    const kept = await t.queue({ status: "deferred", nextAttemptAt: Date.now() + 3_600_000 });
    // A ULID from ten minutes ago (ulid() itself is monotonic and never goes back in time).
    const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let t10 = Date.now() - 10 * 60_000;
    let time = "";
    for (let i = 0; i < 10; i++, t10 = Math.floor(t10 / 32)) time = alphabet[t10 % 32] + time;
    const oldId = time + ulid().slice(10);
    const old = await t.spool.create(oldId);
    await old.write(new TextEncoder().encode("left behind"));
    await old.commit();
    const young = await t.spool.create();
    await young.write(new TextEncoder().encode("record on its way"));
    await young.commit();
    assert.equal(await t.engine.sweepOrphans(), 1);
    assert.equal(await t.spool.exists(oldId), false);
    assert.ok(await t.spool.exists(young.id));
    assert.ok(await t.spool.exists(kept.id));
  } finally {
    await t.close();
  }
});
