/**
 * The audit log from a running daemon: one line per delivery outcome with every
 * field an operator needs, and a target that cannot be written (/dev/full) costs
 * audit lines, never mail.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startDaemon } from "../../testing/daemon.ts";
import { startScriptSink } from "../helpers/script_sink.ts";
import { sendMessage } from "../../testing/smtp_client.ts";

const deliveryToml = (port: number, audit: string) =>
  `[relay]\nlocal_domains = ["local.test"]\n` +
  `[delivery.domains."local.test"]\nmx_override = "127.0.0.1:${port}"\n${audit}`;

Deno.test("every delivery outcome is one JSON audit line with id, sender, recipient, MX, reply, duration and attempt", async () => {
  await using sink = await startScriptSink({ script: { rcpt: { "bad@local.test": "550 5.1.1 no such user" } } });
  await using d = await startDaemon({ toml: deliveryToml(sink.port, ""), logLevel: "info" });
  const r = await sendMessage(
    d.port,
    "s@remote.test",
    ["good@local.test", "bad@local.test"],
    "Subject: a\r\n\r\nx\r\n",
  );
  assert.equal(r.code, 250);
  await sink.waitFor(1);
  const path = join(d.dataDir, "audit.log");
  let lines: Record<string, unknown>[] = [];
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const text = await Deno.readTextFile(path).catch(() => "");
    lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    if (lines.filter((l) => l.type === "delivery" && l.sender === "s@remote.test").length >= 2) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  const good = lines.find((l) => l.recipient === "good@local.test")!;
  const bad = lines.find((l) => l.recipient === "bad@local.test")!;
  assert.equal(good.outcome, "delivered");
  assert.equal(good.sender, "s@remote.test");
  assert.match(String(good.id), /^[0-9A-Z]{26}$/);
  assert.equal(good.mx, `127.0.0.1:${sink.port}`);
  assert.match(String(good.reply), /^250 /);
  assert.equal(good.attempt, 1);
  assert.equal(typeof good.duration_ms, "number");
  assert.ok(!Number.isNaN(Date.parse(String(good.ts))));
  assert.equal(bad.outcome, "failed");
  assert.equal(bad.code, 550);
  assert.match(String(bad.reply), /550 5\.1\.1 no such user/);
});

Deno.test("an audit log on /dev/full (every write fails with ENOSPC) does not stop accepting or delivering", async () => {
  await using sink = await startScriptSink();
  await using d = await startDaemon({
    toml: deliveryToml(sink.port, `[audit]\nfile = "/dev/full"\n`),
    logLevel: "info",
  });
  for (let i = 0; i < 5; i++) {
    const r = await sendMessage(d.port, "s@remote.test", [`u${i}@local.test`], `Subject: ${i}\r\n\r\nx\r\n`);
    assert.equal(r.code, 250, r.text);
  }
  await sink.waitFor(5);
  await d.waitForLog(/audit log: .* dropped: .*No space left on device|audit log: .* dropped/);
  const metrics = await fetch(`http://127.0.0.1:${d.portOf("http")}/metrics`).then((r) => r.text());
  const dropped = Number(/^empath_audit_dropped_lines_total (\d+)/m.exec(metrics)?.[1] ?? 0);
  assert.ok(dropped >= 5, `dropped audit lines are counted (${dropped})`);
  const after = await sendMessage(d.port, "s@remote.test", ["late@local.test"], "Subject: late\r\n\r\nx\r\n");
  assert.equal(after.code, 250, "still accepting");
  await sink.waitFor(6);
  assert.ok((await Deno.stat("/dev/full")).isCharDevice);
  assert.equal(await d.stop(), 0, "clean shutdown");
});
