import assert from "node:assert/strict";
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { openKvStore, recoverQueue } from "../../src/queue/mod.ts";
import { openSpool } from "../../src/spool/mod.ts";
import { sampleRecord } from "./store_contract.ts";

const log = getLogger(["empath", "test"]);

Deno.test("recovery removes unacknowledged data, requeues in-flight messages and flags missing data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-recovery-" });
  const spool = await openSpool(join(dir, "spool"));
  let store = await openKvStore(join(dir, "queue.kv"));
  try {
    // 1. A complete message: data + record.
    const ok = await spool.create();
    await ok.write(new TextEncoder().encode("Subject: ok\r\n\r\nbody\r\n"));
    await ok.commit();
    const okRecord = sampleRecord({ id: ok.id, status: "delivering" });
    await store.put(okRecord);
    // 2. A crash mid-DATA: a half-written file, never committed, no record (a small message
    // in memory leaves nothing at all; a standalone one leaves a partial file).
    const partial = await spool.create(undefined, { standalone: true });
    await partial.write(new TextEncoder().encode("Subject: half"));
    const inMemory = await spool.create();
    await inMemory.write(new TextEncoder().encode("Subject: never written"));
    // 3. A crash after the data commit but before the record (no 250 was sent).
    const orphan = await spool.create();
    await orphan.write(new TextEncoder().encode("Subject: orphan\r\n\r\n"));
    await orphan.commit();
    // 4. A record whose data vanished (disk trouble): kept, marked failed, reported.
    const lost = sampleRecord();
    await store.put(lost);
    await store.close();

    store = await openKvStore(join(dir, "queue.kv"));
    const restarted = await openSpool(join(dir, "spool"));
    const report = await recoverQueue(restarted, store, log);
    assert.deepEqual(report, { partialRemoved: 0, orphansRemoved: 2, requeued: 1, missingData: 1, total: 2 });
    assert.deepEqual(await Array.fromAsync(restarted.list()), [ok.id]);
    assert.equal((await store.get(ok.id))!.status, "queued");
    const lostAfter = (await store.get(lost.id))!;
    assert.equal(lostAfter.status, "failed");
    assert.match(lostAfter.recipients[0]!.lastReply!, /spool data missing/);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
