import assert from "node:assert/strict";
import { join } from "node:path";
import { Readable } from "node:stream";
import { createSubmitter, openFileStore, type QueueRecord, type QueueStore } from "../../src/queue/mod.ts";
import { type IntakeEnvelope, receiveMessage } from "../../src/smtp/intake.ts";
import { openSpool, type Spool } from "../../src/spool/mod.ts";

const envelope = (): IntakeEnvelope => ({
  sender: "alice@example.com",
  recipients: [{ address: "bob@example.net", notify: ["SUCCESS"], orcpt: "rfc822;bob@example.net" }],
  dsn: { envid: "E1" },
  smtpUtf8: false,
  bodyType: "8bitmime",
  client: { address: "192.0.2.7", helo: "client.test", listener: "mx" },
  esmtp: true,
  submission: false,
});

const message = () => Readable.from([new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n")]);

/** Runs `fn` with a spool and a submitter whose store's put fails with `putError` (or works). */
async function withIntake(
  putError: string | undefined,
  fn: (ctx: { spool: Spool; store: QueueStore; receive: () => Promise<QueueRecord>; queued: QueueRecord[] }) => Promise<
    void
  >,
) {
  const dir = await Deno.makeTempDir({ prefix: "empath-intake-" });
  const spool = await openSpool(join(dir, "spool"));
  const store = await openFileStore(join(dir, "queue"));
  try {
    const failing: QueueStore = { ...store, put: () => Promise.reject(new Error(putError)) };
    const submitter = createSubmitter({ store: putError ? failing : store, spool });
    const queued: QueueRecord[] = [];
    submitter.onQueued((record) => queued.push(record));
    const receive = () =>
      receiveMessage(message(), envelope(), {
        spool,
        submitter,
        hostname: "mx.test",
        maxLineLength: 998,
        bareNewline: "reject",
        maxReceivedHeaders: 50,
      });
    await fn({ spool, store, receive, queued });
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("intake queues a message through the submitter with its envelope", () =>
  withIntake(undefined, async ({ spool, store, receive, queued }) => {
    const record = await receive();
    assert.deepEqual(queued, [record]);
    assert.deepEqual(await store.get(record.id), record);
    assert.equal(record.bodyType, "8bitmime");
    assert.equal(record.smtpUtf8, undefined);
    assert.deepEqual(record.dsn, { envid: "E1" });
    assert.deepEqual(record.client, { address: "192.0.2.7", helo: "client.test", listener: "mx" });
    assert.deepEqual(record.recipients.map((r) => [r.notify, r.orcpt]), [[["SUCCESS"], "rfc822;bob@example.net"]]);
    const text = new TextDecoder().decode(await spool.readAll(record.id));
    assert.match(text, /^Received: from client\.test/);
    assert.equal(record.size, text.length);
  }));

Deno.test("intake: a failed queue write answers 451 4.3.0 and leaves no spool file", () =>
  withIntake("EIO: input/output error", async ({ spool, receive, queued }) => {
    await assert.rejects(receive, (err: Error & { responseCode?: number; code?: string }) => {
      assert.equal(err.responseCode, 451);
      assert.match(err.message, /^4\.3\.0 Queue write failed, try again later \(EIO: input\/output error\)/);
      assert.equal(err.code, "QUEUE_IO");
      return true;
    });
    assert.deepEqual(await Array.fromAsync(spool.list()), []);
    assert.deepEqual(queued, []);
  }));

Deno.test("intake: a queue write on a full disk answers 452 4.3.1 and leaves no spool file", () =>
  withIntake("database or disk is full", async ({ spool, receive }) => {
    await assert.rejects(receive, (err: Error & { responseCode?: number; code?: string }) => {
      assert.equal(err.responseCode, 452);
      assert.match(err.message, /^4\.3\.1 Insufficient system storage/);
      assert.equal(err.code, "SPOOL_FULL");
      return true;
    });
    assert.deepEqual(await Array.fromAsync(spool.list()), []);
  }));
