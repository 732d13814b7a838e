/**
 * Hardening (#13), class 1: an outside client cannot make Empath mail its content to a forged
 * third party. Against a live daemon whose local domains are delivered to an aiosmtpd sink,
 * with dnsmasq answering for sender domains and outside clients set by PROXY headers:
 *
 * - unknown local users are refused at RCPT with `550 5.1.1` (any spelling of user or domain),
 *   so nothing is queued and no bounce is ever needed; table entries, `@domain` catch-alls,
 *   `+`-extensions, postmaster and abuse are accepted — also with Empath's own defaults;
 * - the RCPT probe asks the final hop (SMTP over TCP, LMTP over a Unix socket) and caches both
 *   answers; a temporary answer is `450 4.1.1` and is not cached;
 * - address-literal senders get `550 5.7.1`, sender domains without MX/A `550 5.1.8`, DNS
 *   failure `450 4.1.8`; trusted clients are not checked;
 * - a DSN for a 205 KB `RET=FULL` message from an outside client (a known recipient the next
 *   hop refuses) carries headers only, is counted in `empath_backscatter_candidates_total`
 *   and logged on the audit log; mail from trusted clients is not a candidate.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { spooledIds } from "../../testing/spool_reader.ts";
import { type Reply, SmtpClient } from "../../testing/smtp_client.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { eventually, metricValue, smtpScript, startFakeSmtp } from "../helpers/hardening.ts";
import { type ScriptSink, startScriptSink } from "../helpers/script_sink.ts";

const OUTSIDE = "PROXY TCP4 203.0.113.7 127.0.0.1 40000 25";
const OUTSIDE6 = "PROXY TCP6 2001:db8:9::7 ::1 40001 25";
const TRUSTED = "PROXY TCP4 10.1.2.3 127.0.0.1 40002 25";
const TABLE = "# known users\nknown@local.test\nalice@LOCAL.test\n@catchall.test\n";

interface Fixture extends AsyncDisposable {
  d: TestDaemon;
  sink: ScriptSink;
}

async function dns(): Promise<DnsServer> {
  return await startDnsServer({
    mx: [["sender.test", "mx.sender.test", 10]],
    a: [["mx.sender.test", "127.0.0.1"], ["aonly.test", "127.0.0.1"]],
  });
}

/** A daemon for local.test / catchall.test with the given [recipients] body and DNS server port. */
async function fixture(recipients: string, dnsPort: number, extra = ""): Promise<Fixture> {
  const sink = await startScriptSink({ script: { rcpt: { "refused@catchall.test": "550 5.1.1 mailbox gone" } } });
  const dir = await Deno.makeTempDir({ prefix: "empath-backscatter-" });
  await Deno.writeTextFile(join(dir, "recipients"), TABLE);
  const route = (domain: string) => `[delivery.domains."${domain}"]\nmx_override = "127.0.0.1:${sink.port}"\n`;
  const d = await startDaemon({
    defaultListener: false,
    logLevel: "info",
    toml: `[relay]\nlocal_domains = ["local.test", "catchall.test"]\nrelay_networks = ["10.0.0.0/8"]\n` +
      `reject_unknown_sender_domain = true\n` +
      `[recipients]\n${recipients.replaceAll("$TABLE", join(dir, "recipients"))}\n` +
      `[smtp]\nmax_errors = 1000\n` +
      `[delivery]\n[delivery.dns]\nnameserver = "127.0.0.1:${dnsPort}"\ntimeout = "2s"\n` +
      `[delivery.retry]\nbase_delay = "1s"\njitter = 0\n` +
      route("local.test") + route("catchall.test") + route("sender.test") + extra +
      `[[listeners]]\nname = "mx"\naddress = "127.0.0.1:0"\nrole = "mx"\nproxy_protocol = ["127.0.0.0/8"]\n`,
  });
  return {
    d,
    sink,
    async [Symbol.asyncDispose]() {
      await d[Symbol.asyncDispose]();
      await sink.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function session(d: TestDaemon, proxy = OUTSIDE): Promise<SmtpClient> {
  const c = await SmtpClient.connect(d.portOf("mx"), { proxy, timeoutMs: 20_000 });
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd("EHLO client.example")).code, 250);
  return c;
}

/** MAIL (with SMTPUTF8 when the recipient needs it) and one RCPT; returns the RCPT reply. */
async function rcpt(c: SmtpClient, sender: string, to: string): Promise<Reply> {
  assert.equal((await c.cmd("RSET")).code, 250);
  const mail = await c.cmd(`MAIL FROM:<${sender}>${/[^\x20-\x7e]/.test(to) ? " SMTPUTF8" : ""}`);
  assert.equal(mail.code, 250, mail.text);
  return await c.cmd(`RCPT TO:<${to}>`);
}

Deno.test("unknown local users from an outside client get 550 5.1.1 at RCPT in every spelling, and nothing is queued", async () => {
  await using dnsd = await dns();
  await using f = await fixture(`table = "$TABLE"`, dnsd.port);
  using c = await session(f.d);
  const refused: [string, string][] = [
    ["nobody@local.test", "<nobody@local.test>"],
    ["nobody+tag@local.test", "<nobody+tag@local.test>"],
    ["NoBody@LOCAL.TEST", "<NoBody@local.test>"],
    ["nobody@ｌｏｃａｌ.test", "<nobody@local.test>"], // fullwidth letters: the same domain, same answer
    ["nobody@lo\u00adcal.test", "<nobody@local.test>"], // soft hyphen
    ["known-not@local.test", "<known-not@local.test>"],
    ["knownx+known@local.test", "<knownx+known@local.test>"],
  ];
  for (const [to, shown] of refused) {
    const r = await rcpt(c, "bob@sender.test", to);
    assert.equal(r.code, 550, `${to}: ${r.text}`);
    assert.equal(r.text, `550 5.1.1 ${shown}: Recipient address rejected: User unknown in local recipient table`);
  }
  // An outside client from IPv6 is refused the same way; DATA without recipients queues nothing.
  using c6 = await session(f.d, OUTSIDE6);
  assert.equal((await rcpt(c6, "bob@sender.test", "ghost@local.test")).code, 550);
  const data = await c6.cmd("DATA");
  assert.equal(data.code, 503, data.text);
  assert.deepEqual(await spooledIds(f.d.dataDir), []);
  assert.equal(await metricValue(f.d, "empath_recipient_checks_total", { result: "unknown", source: "table" }), 8);
});

Deno.test("table entries, catch-alls, +extensions, postmaster and abuse are accepted and delivered in canonical form", async () => {
  await using dnsd = await dns();
  await using f = await fixture(`table = "$TABLE"`, dnsd.port);
  using c = await session(f.d);
  assert.equal((await c.cmd("MAIL FROM:<bob@sender.test> SMTPUTF8")).code, 250);
  const accepted = [
    ["known@local.test", "known@local.test"],
    ["Known+news@Local.Test", "Known+news@local.test"],
    ["alice@ｌｏｃａｌ.ｔｅｓｔ", "alice@local.test"],
    ["anyone@catchall.test", "anyone@catchall.test"],
    ["x+y@CATCHALL.test", "x+y@catchall.test"],
    ["postmaster@local.test", "postmaster@local.test"],
    ["Abuse@catchall.test", "Abuse@catchall.test"],
  ];
  for (const [to] of accepted) {
    const r = await c.cmd(`RCPT TO:<${to}>`);
    assert.equal(r.code, 250, `${to}: ${r.text}`);
  }
  assert.equal((await c.cmd("DATA")).code, 354);
  assert.equal((await c.cmd("Subject: accepted\r\n\r\nhello\r\n.")).code, 250);
  // Two domains: two deliveries.
  const wire = await eventually(async () => {
    const got = (await f.sink.messages()).flatMap((m) => m.rcpt_tos);
    return got.length >= accepted.length && got;
  }, "every recipient delivered");
  assert.deepEqual(wire.sort(), accepted.map(([, w]) => w).sort());
});

Deno.test("Empath's own defaults (no [recipients], no reject_unknown_sender_domain) refuse unknown users and senders", async () => {
  await using dnsd = await dns();
  await using d = await startDaemon({
    defaultListener: false,
    hardeningDefaults: true,
    toml: `[relay]\nlocal_domains = ["local.test"]\nrelay_networks = []\n` +
      `[delivery]\nenabled = false\n[delivery.dns]\nnameserver = "127.0.0.1:${dnsd.port}"\n` +
      `[[listeners]]\nname = "mx"\naddress = "127.0.0.1:0"\nrole = "mx"\nproxy_protocol = ["127.0.0.0/8"]\n`,
  });
  const config = await Deno.readTextFile(d.configPath);
  assert.doesNotMatch(config, /\[recipients\]|reject_unknown_sender_domain/, "nothing set by the harness");
  using c = await session(d);
  const nobody = await rcpt(c, "bob@sender.test", "nobody@local.test");
  assert.equal(
    nobody.text,
    "550 5.1.1 <nobody@local.test>: Recipient address rejected: User unknown in local recipient table",
  );
  assert.equal((await rcpt(c, "bob@sender.test", "postmaster@local.test")).code, 250);
  assert.equal((await rcpt(c, "bob@sender.test", "abuse@local.test")).code, 250);
  assert.equal((await c.cmd("RSET")).code, 250);
  const unknown = await c.cmd("MAIL FROM:<bob@nowhere.test>");
  assert.equal(unknown.code, 550, unknown.text);
  assert.match(unknown.text, /^550 5\.1\.8 /);
});

Deno.test("outside senders: address literals 550 5.7.1, unknown domains 550 5.1.8, MX or A records accepted", async () => {
  await using dnsd = await dns();
  await using f = await fixture(`table = "$TABLE"`, dnsd.port);
  using c = await session(f.d);
  for (const literal of ["x@[192.0.2.10]", "x@[IPv6:2001:db8::10]", "x@[127.0.0.1]"]) {
    assert.equal((await c.cmd("RSET")).code, 250);
    const r = await c.cmd(`MAIL FROM:<${literal}>`);
    assert.equal(r.code, 550, `${literal}: ${r.text}`);
    assert.match(r.text, /^550 5\.7\.1 Sender address rejected: address literals \(\[[^)]+\]\) are not accepted/);
  }
  for (const sender of ["x@nxdomain.test", "x@mx.nowhere.test", "x@NXDOMAIN.Test"]) {
    assert.equal((await c.cmd("RSET")).code, 250);
    const r = await c.cmd(`MAIL FROM:<${sender}>`);
    assert.equal(r.code, 550, `${sender}: ${r.text}`);
    assert.match(
      r.text,
      /^550 5\.1\.8 Sender address rejected: Domain not found \([a-z.]+ has no MX or address records\)/,
    );
  }
  for (const sender of ["x@sender.test", "x@SENDER.test", "x@aonly.test", ""]) {
    assert.equal((await c.cmd("RSET")).code, 250);
    const r = await c.cmd(`MAIL FROM:<${sender}>`);
    assert.equal(r.code, 250, `${sender}: ${r.text}`);
  }
});

Deno.test("outside senders while DNS is down get 450 4.1.8; trusted clients are not checked", async () => {
  // A name server that does not exist: every look-up fails (temporary failure, not NXDOMAIN).
  const dead = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = (dead.addr as Deno.NetAddr).port;
  dead.close();
  await using f = await fixture(`table = "$TABLE"`, deadPort);
  using c = await session(f.d);
  const r = await c.cmd("MAIL FROM:<bob@sender.test>");
  assert.equal(r.code, 450, r.text);
  assert.equal(r.text, "450 4.1.8 Sender address rejected: cannot look up sender.test now, try again later");
  using t = await session(f.d, TRUSTED);
  for (const sender of ["x@[192.0.2.10]", "bob@nxdomain.test", "bob@sender.test"]) {
    assert.equal((await t.cmd("RSET")).code, 250);
    assert.equal((await t.cmd(`MAIL FROM:<${sender}>`)).code, 250, sender);
  }
  // Recipient validation applies to trusted clients too: it is about the user, not the client.
  assert.equal((await t.cmd("RCPT TO:<nobody@local.test>")).code, 550);
});

Deno.test("RCPT probe over SMTP: known and unknown answers are cached, a temporary one gives 450 4.1.1 and is asked again", async () => {
  await using hop = startFakeSmtp(smtpScript({
    rcpt: (a) =>
      a.startsWith("ghost@") ? "550 5.1.1 no such user here" : a.startsWith("busy@") ? "451 4.3.0 later" : undefined,
  }));
  await using dnsd = await dns();
  await using f = await fixture(
    `verify = "smtp:127.0.0.1:${hop.port}"\nverify_negative_ttl = "3s"\nverify_positive_ttl = "1h"`,
    dnsd.port,
  );
  const probes = (who: string) => hop.lines.filter((l) => l.line.toLowerCase().startsWith(`rcpt to:<${who}`)).length;
  using c = await session(f.d);
  for (let i = 0; i < 3; i++) assert.equal((await rcpt(c, "bob@sender.test", "real@local.test")).code, 250);
  assert.equal(probes("real@"), 1, "a positive answer is cached");
  for (let i = 0; i < 3; i++) {
    const r = await rcpt(c, "bob@sender.test", "ghost@local.test");
    assert.equal(r.code, 550);
    assert.equal(
      r.text,
      "550 5.1.1 <ghost@local.test>: Recipient address rejected: undeliverable address: 550 5.1.1 no such user here",
    );
  }
  assert.equal(probes("ghost@"), 1, "a negative answer is cached");
  assert.equal(hop.lines.find((l) => l.line.startsWith("MAIL"))?.line, "MAIL FROM:<>", "probes use the null sender");
  for (let i = 0; i < 2; i++) {
    const r = await rcpt(c, "bob@sender.test", "busy@local.test");
    assert.match(
      r.text,
      /^450 4\.1\.1 <busy@local\.test>: Recipient address rejected: unverified address: 451 4\.3\.0 later$/,
    );
  }
  assert.equal(probes("busy@"), 2, "a temporary answer is not cached");
  await new Promise((r) => setTimeout(r, 3500));
  assert.equal((await rcpt(c, "bob@sender.test", "ghost@local.test")).code, 550);
  assert.equal(probes("ghost@"), 2, "the negative answer expired after verify_negative_ttl");
  assert.equal((await rcpt(c, "bob@sender.test", "real@local.test")).code, 250);
  assert.equal(probes("real@"), 1);
});

Deno.test("RCPT probe over LMTP on a Unix socket; an unreachable final hop is 450 4.1.1, never an accept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-lmtp-" });
  const path = join(dir, "lmtp.sock");
  await using dnsd = await dns();
  {
    await using hop = startFakeSmtp(
      smtpScript({ rcpt: (a) => a === "ghost@local.test" ? "550 5.1.1 unknown" : undefined }),
      {
        path,
        greeting: "220 lmtp.test LMTP",
      },
    );
    await using f = await fixture(`verify = "lmtp:unix:${path}"\ntable = "$TABLE"`, dnsd.port);
    using c = await session(f.d);
    assert.equal((await rcpt(c, "bob@sender.test", "real@local.test")).code, 250);
    assert.equal((await rcpt(c, "bob@sender.test", "ghost@local.test")).code, 550);
    assert.ok(hop.lines.some((l) => l.line.startsWith("LHLO ")), "LMTP sessions start with LHLO");
    // The table is still consulted first: a table entry needs no probe.
    assert.equal((await rcpt(c, "bob@sender.test", "known@local.test")).code, 250);
    assert.ok(!hop.lines.some((l) => l.line.includes("known@")));
  }
  await using f = await fixture(`verify = "lmtp:unix:${path}"\ntable = "$TABLE"`, dnsd.port);
  using c = await session(f.d);
  const r = await rcpt(c, "bob@sender.test", "real@local.test");
  assert.equal(r.code, 450, r.text);
  assert.match(r.text, /^450 4\.1\.1 <real@local\.test>: Recipient address rejected: unverified address: /);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a refused known recipient: the DSN to a validated outside sender has headers only for 205 KB RET=FULL, and is counted", async () => {
  await using dnsd = await dns();
  await using f = await fixture(`table = "$TABLE"`, dnsd.port);
  // refused@catchall.test is known (catch-all) but the next hop refuses it with 550 5.1.1.
  const body = ("attacker payload line 0123456789 abcdefghijklmnopqrstuvwxyz\r\n").repeat(3300); // ~205 KB
  using c = await session(f.d);
  assert.equal((await c.cmd("MAIL FROM:<bob@sender.test> RET=FULL")).code, 250);
  const r = await c.cmd("RCPT TO:<refused@catchall.test> NOTIFY=FAILURE");
  assert.equal(r.code, 250, r.text);
  assert.equal((await c.cmd("DATA")).code, 354);
  await c.send(`Subject: big one\r\nFrom: <bob@sender.test>\r\n\r\n${body}`);
  assert.equal((await c.cmd(".")).code, 250);
  const [dsn] = await eventually(async () => {
    const all = await f.sink.messages();
    const got = all.filter((m) => m.mail_from === "<>" || m.mail_from === "");
    return got.length > 0 && got;
  }, "the DSN");
  assert.ok(dsn);
  assert.deepEqual(dsn.rcpt_tos, ["bob@sender.test"]);
  assert.match(dsn.data, /Status: 5\.1\.1/);
  assert.match(dsn.data, /Content-Type: text\/rfc822-headers/);
  assert.match(dsn.data, /Subject: big one/);
  assert.doesNotMatch(dsn.data, /attacker payload/);
  assert.ok(dsn.data.length < 20_000, `DSN is ${dsn.data.length} bytes`);
  assert.equal(
    await metricValue(f.d, "empath_backscatter_candidates_total", { decision: "sent", reason: "validated-sender" }),
    1,
  );
  const line = await f.d.waitForLog(/backscatter candidate: \W*failure\W* DSN/);
  assert.match(line, /"logger":"empath\.audit"/);
  assert.match(line, /203\.0\.113\.7/);
  // The same from a trusted client: a DSN too, but no backscatter candidate.
  using t = await session(f.d, TRUSTED);
  assert.equal((await t.cmd("MAIL FROM:<carol@sender.test> RET=FULL")).code, 250);
  assert.equal((await t.cmd("RCPT TO:<refused@catchall.test>")).code, 250);
  assert.equal((await t.cmd("DATA")).code, 354);
  assert.equal((await t.cmd("Subject: trusted\r\n\r\nsmall\r\n.")).code, 250);
  await eventually(
    async () => (await f.sink.messages()).some((m) => m.rcpt_tos.includes("carol@sender.test")),
    "DSN 2",
  );
  assert.equal(await metricValue(f.d, "empath_backscatter_candidates_total"), 1);
});

Deno.test("the recipients table is re-read when it changes; a broken file keeps the last good table", async () => {
  await using dnsd = await dns();
  await using f = await fixture(`table = "$TABLE"`, dnsd.port);
  const path = /table = "([^"]+)"/.exec(await Deno.readTextFile(f.d.configPath))?.[1];
  assert.ok(path);
  using c = await session(f.d);
  assert.equal((await rcpt(c, "bob@sender.test", "newbie@local.test")).code, 550);
  // Saved by rename, as editors and `sed -i` do.
  await Deno.writeTextFile(`${path}.tmp`, `${TABLE}newbie@local.test\n`);
  await Deno.rename(`${path}.tmp`, path);
  await eventually(async () => (await rcpt(c, "bob@sender.test", "newbie+x@local.test")).code === 250, "reload");
  assert.equal((await rcpt(c, "bob@sender.test", "known@local.test")).code, 250);
  await f.d.waitForLog(/recipients table .* reloaded: 4 entries/);
  await Deno.writeTextFile(path, `${TABLE}not an address at all\n`);
  // The file is checked on look-up (at most once a second).
  await eventually(async () => {
    assert.equal((await rcpt(c, "bob@sender.test", "newbie@local.test")).code, 250, "the last good table is kept");
    return f.d.logs.some((l) => /recipients table .* not reloaded, keeping the last good one/.test(l));
  }, "the reload error");
  assert.equal((await rcpt(c, "bob@sender.test", "other@local.test")).code, 550);
});
