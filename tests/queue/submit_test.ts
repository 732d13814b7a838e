import assert from "node:assert/strict";
import { join } from "node:path";
import { createSubmitter, openFileStore, type QueueRecord, type QueueStore } from "../../src/queue/mod.ts";
import { openSpool, type Spool } from "../../src/spool/mod.ts";

const BYTES = new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n");
const ENVELOPE = {
  sender: "alice@example.com",
  recipients: [{ address: "bob@example.net", notify: ["FAILURE" as const], orcpt: "rfc822;bob@example.net" }],
  client: { address: "192.0.2.7", listener: "mx" },
};

/** A store whose put fails with `message` (the rest is the real file store). */
function failingPuts(store: QueueStore, message: string): QueueStore {
  return { ...store, put: () => Promise.reject(new Error(message)) };
}

async function withQueue(fn: (spool: Spool, store: QueueStore) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "empath-submit-" });
  const spool = await openSpool(join(dir, "spool"));
  const store = await openFileStore(join(dir, "queue"));
  try {
    await fn(spool, store);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("submit spools bytes, commits the record, then emits one queued event", () =>
  withQueue(async (spool, store) => {
    const seen: { record: QueueRecord; committed: boolean }[] = [];
    let committed = false;
    const tracked: QueueStore = {
      ...store,
      put: async (record) => {
        assert.ok(await spool.exists(record.id), "the data is durable before the record is written");
        await store.put(record);
        committed = true;
      },
    };
    const submitter = createSubmitter({ store: tracked, spool, clock: () => 1_000 });
    submitter.onQueued((record) => seen.push({ record, committed }));
    const record = await submitter.submit({ data: BYTES, envelope: { ...ENVELOPE, isDsn: true } });
    assert.deepEqual(seen, [{ record, committed: true }], "one event, after the commit");
    assert.deepEqual(await store.get(record.id), record);
    assert.deepEqual(await spool.readAll(record.id), BYTES);
    assert.equal(record.status, "queued");
    assert.equal(record.size, BYTES.length);
    assert.equal(record.receivedAt, 1_000);
    assert.equal(record.nextAttemptAt, 1_000);
    assert.equal(record.isDsn, true);
    assert.deepEqual(record.recipients[0]?.notify, ["FAILURE"]);
    assert.deepEqual(record.dsn, {});
  }));

Deno.test("submit of already spooled data keeps its id, size and receivedAt", () =>
  withQueue(async (spool, store) => {
    const writer = await spool.create();
    await writer.write(BYTES);
    await writer.commit();
    const submitter = createSubmitter({ store, spool });
    const record = await submitter.submit({
      data: { id: writer.id, size: 42 },
      receivedAt: 5,
      envelope: { ...ENVELOPE, smtpUtf8: true, bodyType: "8bitmime", dsn: { ret: "HDRS" }, metadata: { k: 1 } },
    });
    assert.equal(record.id, writer.id);
    assert.equal(record.size, 42);
    assert.equal(record.receivedAt, 5);
    assert.equal(record.smtpUtf8, true);
    assert.equal(record.bodyType, "8bitmime");
    assert.deepEqual(record.dsn, { ret: "HDRS" });
    assert.deepEqual(record.metadata, { k: 1 });
  }));

Deno.test("a failed put removes the spool data, throws a typed error and emits nothing", () =>
  withQueue(async (spool, store) => {
    const submitter = createSubmitter({ store: failingPuts(store, "EIO: input/output error"), spool });
    let events = 0;
    submitter.onQueued(() => events++);
    await assert.rejects(() => submitter.submit({ data: BYTES, envelope: ENVELOPE }), {
      name: "SubmitError",
      code: "SUBMIT_QUEUE_WRITE",
    });
    const writer = await spool.create();
    await writer.write(BYTES);
    await writer.commit();
    await assert.rejects(() => submitter.submit({ data: { id: writer.id, size: BYTES.length }, envelope: ENVELOPE }), {
      code: "SUBMIT_QUEUE_WRITE",
    });
    assert.deepEqual(await Array.fromAsync(spool.list()), [], "no orphan spool data");
    assert.equal(events, 0);
  }));

Deno.test("staged data: the record is written while the data syncs, and the submit waits for both", () =>
  withQueue(async (spool, store) => {
    const writer = await spool.create();
    await writer.write(BYTES);
    const { durable } = writer.stage!();
    assert.deepEqual(await spool.readAll(writer.id), BYTES, "readable as soon as it is staged");
    let synced!: () => void;
    const gate = new Promise<void>((resolve) => synced = resolve);
    let putDuringSync = false;
    let sawDurable = false;
    const tracked: QueueStore = {
      ...store,
      put: async (record) => {
        putDuringSync = true;
        await store.put(record);
      },
    };
    const submitter = createSubmitter({ store: tracked, spool });
    submitter.onQueued(() => assert.ok(sawDurable, "announced only once the data is durable"));
    const submitted = submitter.submit({
      data: {
        id: writer.id,
        size: BYTES.length,
        durable: gate.then(() => durable).then(() => void (sawDurable = true)),
      },
      envelope: ENVELOPE,
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(putDuringSync, "the record's write did not wait for the data's sync");
    let done = false;
    void submitted.then(() => done = true);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(done, false, "no submit (no 250) before the data is durable");
    synced();
    const record = await submitted;
    assert.deepEqual(await store.get(record.id), record);
  }));

Deno.test("staged data whose sync fails: the record is removed again, the data too, and nothing is announced", () =>
  withQueue(async (spool, store) => {
    const writer = await spool.create();
    await writer.write(BYTES);
    await writer.stage!().durable;
    const submitter = createSubmitter({ store, spool });
    let events = 0;
    submitter.onQueued(() => events++);
    const durable = Promise.reject(new Error("EIO: input/output error, fdatasync"));
    await assert.rejects(
      () => submitter.submit({ data: { id: writer.id, size: BYTES.length, durable }, envelope: ENVELOPE }),
      { name: "SubmitError", code: "SUBMIT_SPOOL_WRITE" },
    );
    assert.equal(await store.get(writer.id), null, "no record left");
    assert.deepEqual(await Array.fromAsync(spool.list()), [], "no data left");
    assert.equal(events, 0);
    const again = await spool.create();
    await again.write(BYTES);
    await again.stage!().durable;
    const full = () => Promise.reject(new Error("No space left on device (os error 28)"));
    await assert.rejects(
      () => submitter.submit({ data: { id: again.id, size: BYTES.length, durable: full() }, envelope: ENVELOPE }),
      { code: "SUBMIT_NO_SPACE" },
    );
  }));

Deno.test("a put failing on a full disk is reported as SUBMIT_NO_SPACE", () =>
  withQueue(async (spool, store) => {
    const submitter = createSubmitter({ store: failingPuts(store, "database or disk is full"), spool });
    await assert.rejects(() => submitter.submit({ data: BYTES, envelope: ENVELOPE }), { code: "SUBMIT_NO_SPACE" });
    assert.deepEqual(await Array.fromAsync(spool.list()), []);
  }));

Deno.test("a throwing listener does not fail the submit; unsubscribed listeners are not called", () =>
  withQueue(async (spool, store) => {
    const errors: unknown[] = [];
    const submitter = createSubmitter({ store, spool, onListenerError: (err) => errors.push(err) });
    let calls = 0;
    submitter.onQueued(() => {
      throw new Error("boom");
    });
    const off = submitter.onQueued(() => calls++);
    await submitter.submit({ data: BYTES, envelope: ENVELOPE });
    off();
    await submitter.submit({ data: BYTES, envelope: ENVELOPE });
    assert.equal(calls, 1);
    assert.equal(errors.length, 2);
    assert.equal((await store.counts()).queued, 2);
  }));

Deno.test("priority: a module's level beats the configured one; the module's namespace is not stored", () =>
  withQueue(async (spool, store) => {
    const submitter = createSubmitter({ store, spool, priorityOf: () => "low" });
    const configured = await submitter.submit({ data: BYTES, envelope: ENVELOPE });
    assert.equal(configured.priority, "low");
    const byModule = await submitter.submit({
      data: BYTES,
      envelope: { ...ENVELOPE, metadata: { "@priority": { level: "critical" }, tagger: { n: 1 } } },
    });
    assert.equal(byModule.priority, "critical");
    assert.deepEqual((await store.get(byModule.id))?.metadata, { tagger: { n: 1 } });
    const normal = await createSubmitter({ store, spool }).submit({ data: BYTES, envelope: ENVELOPE });
    assert.equal(normal.priority, undefined, "normal is not written");
  }));
