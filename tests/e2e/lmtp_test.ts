/**
 * Local delivery over LMTP to a real Dovecot (dovecot-lmtpd) started by the test:
 * mail lands in the Maildir, each recipient gets its own outcome from its own reply
 * after DATA (quota → deferred, unknown user → bounced), and mail held while Dovecot
 * is down is delivered once it is back.
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/daemon.ts";
import { startDovecot } from "../../testing/dovecot.ts";
import { sendMessage } from "../../testing/smtp_client.ts";

const MSG = "Subject: lmtp test\r\n\r\nhello over lmtp\r\n.leading dot line\r\n";
/** Over the 1 KiB quota of full@. */
const BIG = MSG + `${"x".repeat(76)}\r\n`.repeat(40);

const toml = (socket: string, how: "local" | "domain") =>
  `[relay]\nlocal_domains = ["example.test"]\n[delivery]\n` +
  (how === "local" ? `local_transport = "lmtp:unix:${socket}"\n` : "") +
  `[delivery.retry]\nbase_delay = "1s"\njitter = 0\n[delivery.circuit_breaker]\ncooldown = "1s"\n` +
  (how === "domain" ? `[delivery.domains."example.test"]\ntransport = "lmtp"\nlmtp = "unix:${socket}"\n` : "");

Deno.test("LMTP: one transaction, an outcome per recipient (delivered, 452 quota deferred, 550 bounced)", async () => {
  const dovecot = await startDovecot({
    users: [{ name: "alice@example.test" }, { name: "bob@example.test" }, { name: "full@example.test", quota: "1" }],
  });
  const d = await startDaemon({ toml: toml(dovecot.socket, "local") });
  try {
    const rcpts = ["bob@example.test", "full@example.test", "nobody@example.test"];
    const r = await sendMessage(d.port, "alice@example.test", rcpts, BIG);
    assert.equal(r.code, 250, r.text);
    const [bob] = await dovecot.waitForMessages("bob@example.test", 1);
    assert.match(bob!, /hello over lmtp\r?\n\.leading dot line/, "dot-stuffing round-trips");
    assert.match(bob!, /by \S+ with LMTP/);
    await d.waitForLog(/full@example\.test.*status=\W*deferred.*452 4\.2\.2/);
    await d.waitForLog(/nobody@example\.test.*status=\W*failed.*550 5\.1\.1/);
    await d.waitForLog(/bob@example\.test.*status=\W*delivered.*250 2\.0\.0/);
    assert.equal((await dovecot.messages("full@example.test")).length, 0);
    // A message whose only recipient bounces is finished: its DSN reaches the sender's mailbox over LMTP too.
    assert.equal((await sendMessage(d.port, "alice@example.test", ["ghost@example.test"], MSG)).code, 250);
    const [dsn] = await dovecot.waitForMessages("alice@example.test", 1);
    assert.match(dsn!, /ghost@example\.test/);
    assert.match(dsn!, /5\.1\.1/);
    // The quota failure stays deferred (retried, never bounced).
    const deferrals = () => d.logs.filter((l) => /full@example\.test.*status=\W*deferred/.test(l)).length;
    const t0 = Date.now();
    while (deferrals() < 2 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 100));
    assert.ok(deferrals() >= 2, "retried");
    assert.ok(!d.logs.some((l) => /full@example\.test.*status=\W*failed/.test(l)));
  } finally {
    await d.stop();
    await d.cleanup();
    await dovecot.stop();
    await dovecot.cleanup();
  }
});

Deno.test("LMTP: several messages over one pooled session; mail held while Dovecot is down is delivered when it is back", async () => {
  const dovecot = await startDovecot({ users: [{ name: "carol@example.test" }], start: false });
  const d = await startDaemon({ toml: toml(dovecot.socket, "domain") });
  try {
    for (let i = 0; i < 3; i++) {
      assert.equal((await sendMessage(d.port, "x@sender.test", ["carol@example.test"], MSG)).code, 250);
    }
    await d.waitForLog(/carol@example\.test.*status=\W*deferred.*451 4\.4\.1 LMTP server unix:/);
    await dovecot.start();
    const got = await dovecot.waitForMessages("carol@example.test", 3, 20_000);
    assert.equal(got.length, 3);
    // And fresh mail goes straight through now.
    assert.equal((await sendMessage(d.port, "x@sender.test", ["carol@example.test"], MSG)).code, 250);
    await dovecot.waitForMessages("carol@example.test", 4);
    const log = await dovecot.log();
    // The helper's readiness probe connects too, and hangs up at the greeting.
    const probes = log.match(/state=GREETING/g)?.length ?? 0;
    const connects = (log.match(/Connect from local/g)?.length ?? 0) - probes;
    assert.ok(connects <= 3, `the fourth message reused a pooled session (${connects} connections)`);
  } finally {
    await d.stop();
    await d.cleanup();
    await dovecot.stop();
    await dovecot.cleanup();
  }
});
