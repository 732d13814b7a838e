import assert from "node:assert/strict";
import { openSpool } from "../../src/spool/mod.ts";
import { SmtpClientError } from "../../src/delivery/smtp_client.ts";
import type { DeliveryTarget, OutboundMessage } from "../../src/delivery/smtp_client.ts";
import { createWorkerPool } from "../../src/delivery/worker_pool.ts";
import type { MessageSource } from "../../src/spool/mod.ts";
import { startFaultSink } from "../../testing/fault_sink.ts";
import { openSource } from "../../src/spool/source.ts";

const poolOptions = { maxPerDestination: 2, idleTimeoutMs: 5_000, maxMessagesPerConnection: 10 };
const target = (port: number, extra: Partial<DeliveryTarget> = {}): DeliveryTarget => ({
  host: "127.0.0.1",
  port,
  tls: "none",
  verifyCertificates: true,
  heloName: "worker.test",
  timeouts: { connect: 5_000, greeting: 5_000, data: 10_000 },
  ...extra,
});
const message = (key: string, source: MessageSource): OutboundMessage => ({
  sender: `${key}@sender.test`,
  recipients: [{ address: "rcpt@example.test" }],
  size: 0,
  open: () => openSource(source),
  source: () => source,
});
const text = (s: string) => new TextEncoder().encode(s);
const BODY = "Subject: worker\r\nX-Test-Id: t\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\nend\r\n";

Deno.test("a message sent through the worker arrives byte for byte, from memory and from a spool file range", async () => {
  await using sink = await startFaultSink({ keep_data: true });
  const dir = await Deno.makeTempDir();
  const spool = await openSpool(dir);
  const pool = createWorkerPool(poolOptions);
  try {
    const w = await spool.create();
    await w.write(text(BODY));
    await w.commit();
    const sources: [string, MessageSource][] = [
      ["memory", { chunks: [text(BODY.slice(0, 40)), text(BODY.slice(40))] }],
      ["range", { location: spool.locate(w.id) }],
    ];
    for (const [key, source] of sources) {
      const session = await pool.acquire(target(sink.port));
      const result = await session.send({ ...message(key, source), size: BODY.length });
      pool.release(session, true);
      assert.equal(result.recipients[0]?.outcome, "delivered", `${key}: ${result.recipients[0]?.reply}`);
      assert.equal(result.recipients[0]?.code, 250);
    }
    const got = await sink.messages();
    assert.deepEqual(got.map((m) => m.key), ["memory", "range"]);
    for (const m of got) assert.equal(m.data?.replaceAll("\r\n", "\n"), BODY.replaceAll("\r\n", "\n"));
    // Both messages went over one pooled connection held by the worker.
    assert.equal(new Set(got.map((m) => m.conn)).size, 1);
  } finally {
    await pool.closeAll();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a refused connection fails in the worker with the same SmtpClientError as on the main thread", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close(); // nothing listens there now
  const pool = createWorkerPool(poolOptions);
  try {
    await assert.rejects(() => pool.acquire(target(port)), (err: unknown) => {
      assert.ok(err instanceof SmtpClientError, String(err));
      assert.equal(err.code, "CONNECT");
      return true;
    });
  } finally {
    await pool.closeAll();
  }
});

Deno.test("recipient replies come back per recipient from the worker", async () => {
  await using sink = await startFaultSink({ plans: { refused: ["rcpt:550 5.1.1 No such user"] } });
  const pool = createWorkerPool(poolOptions);
  try {
    const session = await pool.acquire(target(sink.port));
    const source = { chunks: [text(BODY)] };
    const refused = await session.send({ ...message("refused", source), size: BODY.length });
    pool.release(session, true);
    assert.deepEqual(refused.recipients.map((r) => [r.outcome, r.code, r.reply]), [
      ["failed", 550, "550 5.1.1 No such user"],
    ]);
    assert.equal(refused.tls, false);
    const again = await pool.acquire(target(sink.port)); // the same connection, reset by the worker
    const ok = await again.send({ ...message("ok", source), size: BODY.length });
    pool.release(again, true);
    assert.equal(ok.recipients[0]?.outcome, "delivered");
  } finally {
    await pool.closeAll();
  }
});

Deno.test("a DANE-checked session stays on the main thread; worker sessions show in stats() within a second", async () => {
  await using sink = await startFaultSink({});
  const pool = createWorkerPool(poolOptions);
  try {
    let checked = 0;
    const dane = await pool.acquire(target(sink.port, { verifyPeer: () => (checked++, undefined) }));
    assert.equal(checked, 1); // the check ran here, on this thread
    assert.deepEqual(pool.stats().map((s) => s.active), [1]);
    pool.release(dane, true);
    const remote = await pool.acquire(target(sink.port, { heloName: "other.test", policyKey: "x" }));
    const result = await remote.send({ ...message("k", { chunks: [text(BODY)] }), size: BODY.length });
    assert.equal(result.recipients[0]?.outcome, "delivered");
    await new Promise((r) => setTimeout(r, 1_300));
    const stats = pool.stats();
    assert.equal(stats.length, 2, JSON.stringify(stats));
    assert.ok(stats.some((s) => s.destination.endsWith("|x") && s.idle === 1), JSON.stringify(stats));
  } finally {
    await pool.closeAll();
  }
});
