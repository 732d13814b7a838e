/**
 * No double delivery: a recipient the next hop accepted is marked in the store the moment
 * the transport returns, and no later attempt (after a crash that lost the record update,
 * or an operator re-queue of the same message) sends to it again.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createAttemptRunner, DEDUP_REPLY } from "../../src/delivery/attempt.ts";
import { createLifecycle } from "../../src/delivery/lifecycle.ts";
import { DestinationLimits } from "../../src/delivery/mod.ts";
import { openKvStore } from "../../src/queue/mod.ts";
import {
  log,
  memorySpool,
  queuedRecord,
  recordedEvents,
  replyByLocalPart,
  scriptedTransport,
  testConfig,
} from "./fakes.ts";

Deno.test("a retry after a lost record update does not send to recipients already accepted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-dedup-" });
  let store = await openKvStore(join(dir, "queue.kv"));
  try {
    const transport = scriptedTransport(replyByLocalPart);
    const recorded = recordedEvents();
    const runner = () =>
      createAttemptRunner({
        config: testConfig(),
        store,
        spool: memorySpool(),
        log,
        limits: new DestinationLimits(() => ({ maxConnections: 5, failures: 5, cooldownMs: 60_000 })),
        transportFor: () => transport,
        lifecycle: createLifecycle({ store, spool: memorySpool(), log, events: recorded.events }),
      });
    const record = queuedRecord(Date.now(), ["ok1@a.example", "later@a.example", "ok2@b.example"]);
    const before = structuredClone(record);
    await store.put(record);
    await runner().deliverMessage(record);
    assert.deepEqual(transport.jobs.flatMap((j) => j.message.recipients.map((r) => r.address)).sort(), [
      "later@a.example",
      "ok1@a.example",
      "ok2@b.example",
    ]);
    // The kill came after the 250s but before the record was updated: the old record is back.
    await store.put(before);
    await store.close();
    store = await openKvStore(join(dir, "queue.kv"));
    assert.deepEqual((await store.deliveredOf(record.id)).sort(), ["ok1@a.example", "ok2@b.example"]);
    transport.jobs.length = 0;
    await runner().deliverMessage(before);
    assert.deepEqual(transport.jobs.flatMap((j) => j.message.recipients.map((r) => r.address)), ["later@a.example"]);
    const after = await store.get(record.id);
    assert.equal(after?.recipients.find((r) => r.address === "ok1@a.example")?.lastReply, DEDUP_REPLY);
    assert.equal(after?.recipients.find((r) => r.address === "ok1@a.example")?.status, "delivered");
    const dedup = recorded.seen.filter((e) => e.kind === "deduplicated");
    assert.deepEqual(dedup.map((e) => e.recipients?.sort()), [["ok1@a.example", "ok2@b.example"]]);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
