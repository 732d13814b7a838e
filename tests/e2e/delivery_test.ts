/**
 * End to end delivery: swaks/raw client → Empath → real SMTP sinks (aiosmtpd),
 * reached through MX records served by dnsmasq or through per-domain overrides.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { join } from "node:path";
import { openKvStore } from "../../src/queue/mod.ts";
import { restartDaemon, startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { randomLoopback, startDnsServer } from "../helpers/dns_server.ts";
import { startScriptSink } from "../helpers/script_sink.ts";
import { sendMessage } from "../../testing/smtp_client.ts";

const MSG = "Subject: relay test\r\n\r\nhello through empath\r\n.leading dot line\r\n";

function send(d: TestDaemon, to: string[], from = "alice@example.com") {
  return sendMessage(d.port, from, to, MSG);
}

async function record(d: TestDaemon, id: string) {
  const store = await openKvStore(join(d.dataDir, "queue.kv"));
  try {
    return await store.get(id);
  } finally {
    await store.close();
  }
}

const idOf = (text: string) => /queued as (\S+)/.exec(text)![1]!;

Deno.test("delivers through real MX records, preferring the lowest preference and failing over", async () => {
  const mx1 = randomLoopback();
  const mx2 = randomLoopback();
  await using sink2 = await startScriptSink({ host: mx2 });
  await using dns = await startDnsServer({
    mx: [["a.test", "mx1.a.test", 10], ["a.test", "mx2.a.test", 20]],
    a: [["mx1.a.test", mx1], ["mx2.a.test", mx2]],
  });
  // mx1 is down at first: nothing listens on mx1:port.
  await using d = await startDaemon({
    toml: `[delivery]\nport = ${sink2.port}\n[delivery.dns]\nnameserver = "127.0.0.1:${dns.port}"\n`,
  });
  const r = await send(d, ["bob@a.test"]);
  assert.equal(r.code, 250, r.text);
  const [msg] = await sink2.waitFor(1);
  assert.ok(msg);
  assert.deepEqual(msg.rcpt_tos, ["bob@a.test"]);
  assert.equal(msg.mail_from, "alice@example.com");
  assert.match(msg.data, /hello through empath\r\n\.leading dot line\r\n$/, "dot-stuffing round-trips");
  assert.match(msg.data, /^Received: from client\.test/);
  // Now mx1 comes up: the preferred MX gets the next message.
  await using sink1 = await startScriptSink({ host: mx1, port: sink2.port });
  assert.equal((await send(d, ["carol@a.test"])).code, 250);
  const [m1] = await sink1.waitFor(1);
  assert.ok(m1);
  assert.deepEqual(m1.rcpt_tos, ["carol@a.test"]);
  assert.equal((await sink2.messages()).length, 1);
});

Deno.test("retries a 451 after the backoff delay and then delivers", async () => {
  await using sink = await startScriptSink({ script: { data: ["451 4.3.0 try again later"] } });
  await using d = await startDaemon({
    toml:
      `[delivery.retry]\nbase_delay = "1s"\njitter = 0\n[delivery.domains."b.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
  });
  const t0 = Date.now();
  assert.equal((await send(d, ["bob@b.test"])).code, 250);
  await d.waitForLog(/status=.*deferred.*451 4\.3\.0 try again later/);
  await sink.waitFor(1, 10_000);
  assert.ok(Date.now() - t0 >= 1000, "the retry waited for the backoff");
  await d.waitForLog(/"summary":"[^"]*bob@b\.test=delivered/);
});

Deno.test("records mixed per-recipient replies: 250, 451 and 550 in one transaction", async () => {
  const sink = await startScriptSink({
    script: { rcpt: { "temp@c.test": "451 4.2.1 mailbox busy", "bad@c.test": "550 5.1.1 no such user" } },
  });
  const d = await startDaemon({
    toml: `[delivery.retry]\nbase_delay = "1h"\n[delivery.domains."c.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
  });
  try {
    const r = await send(d, ["good@c.test", "temp@c.test", "bad@c.test"]);
    const id = idOf(r.text);
    const [msg] = await sink.waitFor(1);
    assert.deepEqual(msg?.rcpt_tos, ["good@c.test"]);
    await d.waitForLog(/bad@c\.test.*status=.*failed/);
    assert.equal(await d.stop(), 0);
    const rec = (await record(d, id))!;
    assert.equal(rec.status, "deferred");
    assert.deepEqual(
      rec.recipients.map((x) => [x.address, x.status, x.lastCode]),
      [["good@c.test", "delivered", 250], ["temp@c.test", "deferred", 451], ["bad@c.test", "failed", 550]],
    );
    assert.equal(rec.attempts.length, 1);
    assert.equal(rec.attempts[0]?.server, `127.0.0.1:${sink.port}`);
    assert.match(rec.attempts[0]!.result.find((x) => x.address === "bad@c.test")!.reply, /550 5\.1\.1 no such user/);
    assert.ok(rec.nextAttemptAt > Date.now() + 30 * 60_000, "next attempt follows the 1h backoff");
  } finally {
    await d.kill();
    await d.cleanup();
    await sink.stop();
  }
});

Deno.test("a 550 fails the recipient at once and the message is not retried", async () => {
  await using sink = await startScriptSink({ script: { rcpt: { "nobody@d.test": "550 5.1.1 no such user" } } });
  await using d = await startDaemon({
    toml: `[delivery.retry]\nbase_delay = "1s"\n[delivery.domains."d.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
  });
  assert.equal((await send(d, ["nobody@d.test"])).code, 250);
  await d.waitForLog(/"summary":"[^"]*nobody@d\.test=failed/);
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(d.logs.filter((l) => /to=<.*nobody@d\.test/.test(l)).length, 1, "exactly one attempt");
  assert.equal((await sink.messages()).length, 0);
});

Deno.test("a null MX fails permanently without any connection attempt", async () => {
  await using dns = await startDnsServer({ mx: [["nullmx.test", ".", 0]] });
  await using d = await startDaemon({ toml: `[delivery.dns]\nnameserver = "127.0.0.1:${dns.port}"\n` });
  assert.equal((await send(d, ["x@nullmx.test"])).code, 250);
  const line = await d.waitForLog(/x@nullmx\.test.*status=/);
  assert.match(line, /failed.*556 5\.1\.10 .*null MX/);
});

Deno.test("a domain that does not exist fails permanently; a DNS timeout defers", async () => {
  await using dns = await startDnsServer({});
  await using d = await startDaemon({
    toml: `[delivery.dns]\nnameserver = "127.0.0.1:${dns.port}"\n[delivery.retry]\nbase_delay = "1h"\n`,
  });
  assert.equal((await send(d, ["x@nowhere.test"])).code, 250);
  assert.match(await d.waitForLog(/x@nowhere\.test.*status=/), /failed.*550 5\.1\.2/);
  // A name server that does not answer: temporary.
  await using silent = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
  const port = silent.address().port;
  await using d2 = await startDaemon({
    toml: `[delivery.dns]\nnameserver = "127.0.0.1:${port}"\ntimeout = "300ms"\n[delivery.retry]\nbase_delay = "1h"\n`,
  });
  assert.equal((await send(d2, ["x@slow.test"])).code, 250);
  assert.match(await d2.waitForLog(/x@slow\.test.*status=/), /deferred.*451 4\.4\.3/);
});

Deno.test("messages older than max_queue_lifetime expire with 4.4.7", async () => {
  await using sink = await startScriptSink({ script: { rcpt: { "slow@e.test": "451 4.2.0 come back later" } } });
  await using d = await startDaemon({
    toml: `[delivery]\nmax_queue_lifetime = "2s"\n[delivery.retry]\nbase_delay = "1s"\njitter = 0\n` +
      `[delivery.domains."e.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
  });
  assert.equal((await send(d, ["slow@e.test"])).code, 250);
  await d.waitForLog(/expired after/, 15_000);
  await d.waitForLog(/"summary":"[^"]*slow@e\.test=failed/);
});

Deno.test("a restart in the middle of a retry schedule continues it", async () => {
  await using sink = await startScriptSink({ script: { data: ["451 4.3.0 busy"] } });
  await using d = await startDaemon({
    toml:
      `[delivery.retry]\nbase_delay = "3s"\njitter = 0\n[delivery.domains."f.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
  });
  const id = idOf((await send(d, ["bob@f.test"])).text);
  await d.waitForLog(/status=.*deferred/);
  assert.equal(await d.stop(), 0);
  const rec = (await record(d, id))!;
  assert.equal(rec.status, "deferred");
  assert.equal(rec.attempts.length, 1);
  assert.ok(rec.nextAttemptAt > Date.now(), "the schedule was persisted");
  // The restarted daemon is disposed first (stop, then its dir is removed); disposing `d` after it is a no-op.
  await using restarted = await restartDaemon(d);
  await sink.waitFor(1, 15_000);
  await restarted.waitForLog(/"summary":"[^"]*bob@f\.test=delivered/);
});

Deno.test("the circuit breaker holds a dead destination after repeated connection failures", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close(); // nothing listens there now
  await using d = await startDaemon({
    toml: `[delivery.circuit_breaker]\nfailures = 2\ncooldown = "1h"\n[delivery.retry]\nbase_delay = "1h"\n` +
      `[delivery.domains."dead.test"]\nmx_override = "127.0.0.1:${port}"\n`,
  });
  for (let i = 0; i < 2; i++) {
    assert.equal((await send(d, [`u${i}@dead.test`])).code, 250);
    await d.waitForLog(new RegExp(`u${i}@dead\\.test.*status=.*deferred.*4\\.4\\.1`));
  }
  assert.equal((await send(d, ["u2@dead.test"])).code, 250);
  await d.waitForLog(/delivery held \(.*circuit-open/);
  assert.equal(d.logs.filter((l) => /u2@dead\.test.*status=/.test(l)).length, 0, "no attempt while open");
});

Deno.test("a per-domain rate limit spaces deliveries out", async () => {
  await using sink = await startScriptSink();
  await using d = await startDaemon({
    toml: `[delivery.domains."g.test"]\nmx_override = "127.0.0.1:${sink.port}"\nrate = 2\n`,
  });
  for (let i = 0; i < 6; i++) assert.equal((await send(d, [`u${i}@g.test`])).code, 250);
  const msgs = await sink.waitFor(6, 20_000);
  const times = msgs.map((m) => (m as unknown as { received_at: number }).received_at).sort();
  // 2/s with a burst of 2: six messages need at least ~2 s.
  const spread = times[5]! - times[0]!; // waitFor(6) returned at least six
  assert.ok(spread >= 1.5, `spread ${spread} s`);
});
