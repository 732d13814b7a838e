/**
 * `delivery.worker = true`: outbound SMTP sessions in a Worker thread, end to end through a
 * live daemon: small messages (handed over from memory), a large one (read by the worker from
 * its own spool file), per-recipient replies, and a stop that closes the worker's sessions.
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/daemon.ts";
import { startFaultSink } from "../../testing/fault_sink.ts";
import { sendMessage } from "../../testing/smtp_client.ts";

Deno.test("with delivery.worker on, mail of every size is relayed byte for byte and per-recipient replies count", async () => {
  await using sink = await startFaultSink({ keep_data: true, plans: { bounce: ["rcpt:550 5.1.1 no such user"] } });
  await using d = await startDaemon({
    toml: `[delivery]\nworker = true\nrelay_host = "127.0.0.1:${sink.port}"\ntls = "none"\n`,
  });
  const small = "Subject: small\r\nX-Test-Id: small\r\n\r\nhello\r\n.leading dot\r\n";
  const line = "x".repeat(76) + "\r\n";
  const large = "Subject: large\r\nX-Test-Id: large\r\n\r\n" + line.repeat(6000) + ".dot at the end\r\n"; // ~470 KB
  for (const [from, body] of [["small@example.com", small], ["large@example.com", large]] as const) {
    const r = await sendMessage(d.port, from, ["rcpt@example.net"], body);
    assert.equal(r.code, 250, r.text);
  }
  const bounced = await sendMessage(d.port, "bounce@example.com", ["gone@example.net"], small);
  assert.equal(bounced.code, 250, bounced.text);
  let got = await sink.messages();
  for (let i = 0; i < 100 && got.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 100));
    got = await sink.messages();
  }
  const byKey = new Map(got.map((m) => [m.key, m]));
  assert.ok(byKey.get("small")?.data?.endsWith("hello\r\n.leading dot\r\n"), byKey.get("small")?.data ?? "");
  const largeData = byKey.get("large")?.data ?? "";
  assert.ok(largeData.endsWith(line.repeat(3) + ".dot at the end\r\n"), "large message intact");
  assert.ok(largeData.length > 450_000, String(largeData.length));
  // The refused recipient bounced (a DSN to bounce@example.com goes to the same relay host).
  for (let i = 0; i < 100 && !(await sink.messages()).some((m) => m.key === ""); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const dsn = (await sink.messages()).find((m) => m.key === "");
  assert.ok(dsn, "a DSN for the refused recipient");
  assert.deepEqual(dsn.rcpt_tos, ["bounce@example.com"]);
  assert.match(dsn.data ?? "", /550 5\.1\.1 no such user/);
});
