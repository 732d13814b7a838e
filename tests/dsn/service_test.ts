import assert from "node:assert/strict";
import { join } from "node:path";
import { parseConfig } from "../../src/config/mod.ts";
import { createDsnService, type DsnService } from "../../src/dsn/mod.ts";
import { logger } from "../../src/observability/mod.ts";
import { createSubmitter, openFileStore, type QueueRecord, type QueueStore } from "../../src/queue/mod.ts";
import { openSpool, type Spool } from "../../src/spool/mod.ts";
import { sampleRecord } from "../queue/store_contract.ts";

interface Ctx {
  spool: Spool;
  store: QueueStore;
  dsn: DsnService;
  /** A message whose only recipient failed, with its data in the spool. */
  original: QueueRecord;
  /** What the submitter announced. */
  queued: QueueRecord[];
  /** What went to the audit log. */
  audited: Record<string, unknown>[];
}

/** Runs `fn` with a DSN service over a file store; `failPut` makes the submitter's store refuse writes. */
async function withDsn(failPut: boolean, fn: (ctx: Ctx) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "empath-dsn-" });
  const spool = await openSpool(join(dir, "spool"));
  const store = await openFileStore(join(dir, "queue"));
  try {
    const writer = await spool.create();
    await writer.write(new TextEncoder().encode("From: alice@example.com\r\nSubject: hi\r\n\r\nbody\r\n"));
    await writer.commit();
    const original = sampleRecord({ id: writer.id, size: writer.bytes });
    Object.assign(original.recipients[0]!, { status: "failed", lastReply: "550 5.1.1 no such user", lastCode: 550 });
    await store.put(original);
    const refusing: QueueStore = { ...store, put: () => Promise.reject(new Error("EIO: input/output error")) };
    const submitter = createSubmitter({ store: failPut ? refusing : store, spool });
    const queued: QueueRecord[] = [];
    submitter.onQueued((record) => queued.push(record));
    const config = parseConfig("", "test.toml");
    const audited: Record<string, unknown>[] = [];
    const dsn = createDsnService({
      config: () => config,
      spool,
      submitter,
      hostname: "mx.test",
      log: logger("dsn"),
      audit: logger("audit"),
      auditLog: { write: (event) => audited.push(event) },
    });
    await fn({ spool, store, dsn, original, queued, audited });
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a failure DSN is queued through the submitter and announced once", () =>
  withDsn(false, async ({ spool, store, dsn, original, queued }) => {
    await dsn.finished(original);
    assert.equal(queued.length, 1);
    const report = queued[0]!;
    assert.deepEqual(await store.get(report.id), report);
    assert.equal(report.sender, "");
    assert.equal(report.isDsn, true);
    assert.deepEqual(report.recipients.map((r) => [r.address, r.notify]), [[original.sender, ["NEVER"]]]);
    assert.deepEqual(report.metadata, { dsnFor: original.id, dsnKind: "failure" });
    assert.equal(report.size, (await spool.readAll(report.id)).length);
  }));

Deno.test("when the DSN's queue record cannot be written, no spool file is left behind", () =>
  withDsn(true, async ({ spool, dsn, original, queued }) => {
    await assert.rejects(() => dsn.finished(original), { name: "SubmitError", code: "SUBMIT_QUEUE_WRITE" });
    assert.deepEqual(queued, []);
    assert.deepEqual(await Array.fromAsync(spool.list()), [original.id], "only the original message's data");
  }));

Deno.test("never bounce a bounce: a failed message from the null sender gets an audit line, not a DSN", () =>
  withDsn(false, async ({ dsn, original, queued, audited }) => {
    await dsn.finished({ ...original, sender: "" });
    assert.deepEqual(queued, []);
    assert.equal(audited.length, 1);
    assert.deepEqual(audited[0], {
      type: "dsn",
      outcome: "suppressed",
      kind: "failure",
      id: original.id,
      sender: "",
      reason: "null-sender",
      recipients: [{ address: original.recipients[0]!.address, action: "failed", status: "5.1.1" }],
    });
  }));
