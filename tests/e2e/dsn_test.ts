/**
 * DSNs end to end: bounces, NOTIFY handling, relayed reports, delay warnings and
 * "never bounce a bounce", through the real daemon and real SMTP sinks.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startDaemon } from "../../testing/daemon.ts";
import { type ScriptSink, startScriptSink } from "../helpers/script_sink.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";

async function send(port: number, from: string, rcpts: string[]) {
  const c = await SmtpClient.connect(port);
  try {
    await c.reply();
    await c.cmd("EHLO dsn.test");
    assert.equal((await c.cmd(`MAIL FROM:<${from}>`)).code, 250);
    for (const r of rcpts) assert.equal((await c.cmd(`RCPT TO:${r}`)).code, 250);
    await c.cmd("DATA");
    const r = await c.cmd("Subject: dsn e2e\r\nMessage-ID: <e2e@s.test>\r\n\r\nbody\r\n.");
    assert.equal(r.code, 250);
  } finally {
    c.close();
  }
}

// aiosmtpd records the null reverse-path as "<>".
const isNullSender = (from: string) => from === "" || from === "<>";
const dsns = async (sink: ScriptSink) => (await sink.messages()).filter((m) => isNullSender(m.mail_from));

function toml(sink: ScriptSink, extra = "") {
  return `[delivery.retry]\nbase_delay = "1s"\njitter = 0\n` +
    `[delivery.domains."x.test"]\nmx_override = "127.0.0.1:${sink.port}"\n` +
    `[delivery.domains."s.test"]\nmx_override = "127.0.0.1:${sink.port}"\n${extra}`;
}

Deno.test("a permanent failure is bounced once to the sender with the null reverse-path", async () => {
  await using sink = await startScriptSink({ script: { rcpt: { "bad@x.test": "550 5.1.1 no such user" } } });
  await using d = await startDaemon({ toml: toml(sink) });
  await send(d.port, "alice@s.test", ["<bad@x.test>", "<good@x.test>"]);
  const [bounce] = await (async () => {
    await sink.waitFor(2);
    return await dsns(sink);
  })();
  assert.ok(bounce, "a DSN arrived");
  assert.deepEqual(bounce.rcpt_tos, ["alice@s.test"]);
  assert.match(bounce.data, /Content-Type: multipart\/report; report-type=delivery-status/);
  assert.match(bounce.data, /Final-Recipient: rfc822; bad@x\.test\r\nAction: failed\r\nStatus: 5\.1\.1/);
  assert.match(bounce.data, /Diagnostic-Code: smtp; 550 5\.1\.1 no such user/);
  assert.doesNotMatch(bounce.data, /good@x\.test\r\nAction/, "only the failed recipient is reported");
  assert.match(bounce.data, /Subject: dsn e2e/, "the original is returned");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await dsns(sink)).length, 1);
});

Deno.test("NOTIFY=NEVER suppresses the bounce", async () => {
  await using sink = await startScriptSink({ script: { rcpt: { "bad@x.test": "550 5.1.1 no such user" } } });
  await using d = await startDaemon({ toml: toml(sink) });
  await send(d.port, "alice@s.test", ["<bad@x.test> NOTIFY=NEVER"]);
  await d.waitForLog(/bad@x\.test.*status=.*failed/);
  await new Promise((r) => setTimeout(r, 700));
  assert.equal((await dsns(sink)).length, 0);
});

Deno.test("a message from the null sender that fails is never bounced, and the drop is audited", async () => {
  await using sink = await startScriptSink({ script: { rcpt: { "bad@x.test": "550 5.1.1 no such user" } } });
  await using d = await startDaemon({ toml: toml(sink) });
  await send(d.port, "", ["<bad@x.test>"]);
  const line = await d.waitForLog(/never bounce a bounce/);
  assert.match(line, /"logger":"empath\.audit"/);
  assert.equal((await sink.messages()).length, 0);
  // The README's promise: the drop is a line in the audit log file, not only in the process log.
  const id = (JSON.parse(line) as { properties: { id: string } }).properties.id;
  const audit = join(d.dataDir, "audit.log");
  let drop: Record<string, unknown> | undefined;
  for (let i = 0; i < 50 && !drop; i++) {
    const text = await Deno.readTextFile(audit).catch(() => "");
    drop = text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.type === "dsn" && e.id === id);
    if (!drop) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(drop, `a dsn line for ${id} in ${audit}`);
  assert.equal(drop.outcome, "suppressed");
  assert.equal(drop.reason, "null-sender");
  assert.equal(drop.sender, "");
});

Deno.test("NOTIFY=SUCCESS: a next hop without DSN earns a relayed report; with DSN the request is passed on", async () => {
  await using plain = await startScriptSink({ noDsn: true });
  await using capable = await startScriptSink();
  await using d = await startDaemon({
    toml: `[delivery.domains."n.test"]\nmx_override = "127.0.0.1:${plain.port}"\n` +
      `[delivery.domains."y.test"]\nmx_override = "127.0.0.1:${capable.port}"\n` +
      `[delivery.domains."s.test"]\nmx_override = "127.0.0.1:${capable.port}"\n`,
  });
  await send(d.port, "alice@s.test", ["<u@n.test> NOTIFY=SUCCESS ORCPT=rfc822;u@n.test"]);
  await plain.waitFor(1);
  const all = await capable.waitFor(1);
  const report = all.find((m) => isNullSender(m.mail_from))!;
  assert.match(report.data, /Subject: Successful Mail Delivery Report/);
  assert.match(
    report.data,
    /Original-Recipient: rfc822; u@n\.test\r\nFinal-Recipient: rfc822; u@n\.test\r\nAction: relayed/,
  );

  await send(d.port, "alice@s.test", ["<v@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;v@y.test"]);
  const got = await capable.waitFor(2);
  const passed = got.find((m) => m.rcpt_tos.includes("v@y.test"))!;
  assert.ok(passed.rcpt_options.flat().some((o) => /^NOTIFY=SUCCESS,FAILURE$/i.test(o)), JSON.stringify(passed));
  assert.ok(passed.rcpt_options.flat().some((o) => /^ORCPT=rfc822;v@y\.test$/i.test(o)));
  await new Promise((r) => setTimeout(r, 700));
  assert.equal((await dsns(capable)).length, 1, "no report of our own when the next hop does DSN");
});

Deno.test("a delay warning goes out once when a message waits longer than dsn.delay_warning", async () => {
  await using sink = await startScriptSink({ script: { rcpt: { "slow@x.test": "451 4.2.0 mailbox busy" } } });
  await using d = await startDaemon({ toml: toml(sink, `[dsn]\ndelay_warning = "1s"\n`) });
  await send(d.port, "alice@s.test", ["<slow@x.test>"]);
  const [warning] = await (async () => {
    const end = Date.now() + 15_000;
    while ((await dsns(sink)).length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    return await dsns(sink);
  })();
  assert.ok(warning, "a delay warning arrived");
  assert.match(warning.data, /Subject: Delayed Mail \(still being retried\)/);
  assert.match(warning.data, /Action: delayed\r\nStatus: 4\.2\.0/);
  assert.match(warning.data, /Will-Retry-Until: /);
  await d.waitForLog(/slow@x\.test.*status=.*deferred/);
  await new Promise((r) => setTimeout(r, 2500)); // more retries happen, no more warnings
  assert.equal((await dsns(sink)).length, 1);
});
