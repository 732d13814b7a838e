import assert from "node:assert/strict";
import { LAZY_WRITE_MS, openKvStore, type QueueRecord } from "../../src/queue/mod.ts";
import { newQueueRecord } from "../../src/queue/submit.ts";
import { ulid } from "../../src/spool/mod.ts";
import { tempDir } from "../../testing/mod.ts";

const envelope = {
  sender: "",
  recipients: [{ address: "bob@example.net" }],
  client: { address: "127.0.0.1", listener: "mx" },
};
const record = () => newQueueRecord({ id: ulid(), size: 10 }, envelope, Date.now());

/** What a store reopened at `path` (a restarted daemon) holds for each id. */
async function afterReopen(path: string, ids: string[]): Promise<(QueueRecord | null)[]> {
  const again = await openKvStore(path);
  try {
    return await Promise.all(ids.map((id) => again.get(id)));
  } finally {
    await again.close();
  }
}

Deno.test("a lazy delete on its own is committed within LAZY_WRITE_MS and survives a reopen", async () => {
  await using dir = await tempDir("empath-lazy-");
  const path = `${dir.path}/queue.kv`;
  const store = await openKvStore(path);
  const r = record();
  await store.put(r);
  const t0 = performance.now();
  await store.delete(r.id, { lazy: true });
  const waited = performance.now() - t0;
  assert.ok(waited >= LAZY_WRITE_MS - 2, `resolved after ${waited} ms: it should have waited for company`);
  assert.ok(waited < LAZY_WRITE_MS + 500, `resolved after ${waited} ms`);
  await store.close();
  assert.deepEqual(await afterReopen(path, [r.id]), [null]);
});

Deno.test("a lazy delete rides along with the next put's commit instead of waiting", async () => {
  await using dir = await tempDir("empath-lazy-");
  const path = `${dir.path}/queue.kv`;
  const store = await openKvStore(path);
  const old = record();
  await store.put(old);
  const t0 = performance.now();
  const removed = store.delete(old.id, { lazy: true }).then(() => performance.now() - t0);
  const fresh = record();
  await store.put(fresh); // starts a commit at once; the waiting delete joins it
  const waited = await removed;
  assert.ok(waited < LAZY_WRITE_MS, `the lazy delete waited ${waited} ms although a commit came by`);
  await store.close();
  const [gone, kept] = await afterReopen(path, [old.id, fresh.id]);
  assert.equal(gone, null);
  assert.equal(kept?.id, fresh.id);
});

Deno.test("close commits lazy deletes still waiting", async () => {
  await using dir = await tempDir("empath-lazy-");
  const path = `${dir.path}/queue.kv`;
  const store = await openKvStore(path);
  const r = record();
  await store.put(r);
  const removed = store.delete(r.id, { lazy: true });
  await store.close();
  await removed;
  assert.deepEqual(await afterReopen(path, [r.id]), [null]);
});

Deno.test("a delivery mark is in the marks log file as soon as markDelivered resolves", async () => {
  await using dir = await tempDir("empath-lazy-");
  const path = `${dir.path}/queue.kv`;
  const store = await openKvStore(path);
  const t0 = performance.now();
  await store.markDelivered!([{ id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R", recipient: "bob@example.net", at: 1 }]);
  assert.ok(performance.now() - t0 < 500);
  // Another reader (a restarted daemon) sees it without the store being closed: write(2) happened.
  const text = await Deno.readTextFile(`${path}.delivered.log`);
  assert.match(text, /"recipient":"bob@example\.net"/);
  await store.close();
});
