/**
 * Hardening (#13), class 3: envelope canonicalisation and SMTPUTF8, against a live daemon
 * with aiosmtpd sinks as next hops (one with SMTPUTF8, one without).
 *
 * - IDNA-equivalent spellings of a domain (upper case, fullwidth letters, a soft hyphen,
 *   U-label or A-label) are routed by that domain's `[delivery.domains]` policy and reach the
 *   next hop with the A-label domain.
 * - To a next hop without SMTPUTF8: a UTF-8 local part or UTF-8 headers under SMTPUTF8 bounce
 *   with `5.6.7`; an IDN recipient goes out as A-labels with no 8-bit byte; mail that asked
 *   for SMTPUTF8 but is all ASCII is delivered without it. A next hop with SMTPUTF8 gets the
 *   UTF-8 mail.
 * - Unknown or unoffered ESMTP parameters get `555 5.5.4` (REQUIRETLS too, also over TLS).
 */
import assert from "node:assert/strict";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { type Reply, SmtpClient } from "../../testing/smtp_client.ts";
import { certificateChain } from "../helpers/certificate_chain.ts";
import { eventually } from "../helpers/hardening.ts";
import { type ScriptSink, type SinkMessage, startScriptSink } from "../helpers/script_sink.ts";

interface Fixture extends AsyncDisposable {
  d: TestDaemon;
  utf8: ScriptSink;
  plain: ScriptSink;
}

/** example.test, xn--bcher-kva.test and s.test go to the SMTPUTF8 sink; plain.test and münchen.test to the other. */
async function fixture(extra = ""): Promise<Fixture> {
  const utf8 = await startScriptSink();
  const plain = await startScriptSink({ noSmtpUtf8: true });
  const route = (domain: string, sink: ScriptSink) =>
    `[delivery.domains."${domain}"]\nmx_override = "127.0.0.1:${sink.port}"\n`;
  const d = await startDaemon({
    logLevel: "info",
    toml: `[relay]\nlocal_domains = ["local.test"]\nreject_unknown_sender_domain = false\n` +
      `[recipients]\nunknown = "accept"\n[smtp]\nmax_errors = 1000\n${extra}` +
      `[delivery]\n[delivery.retry]\nbase_delay = "1s"\njitter = 0\n` +
      route("example.test", utf8) + route("xn--bcher-kva.test", utf8) + route("s.test", utf8) +
      route("plain.test", plain) + route("xn--mnchen-3ya.test", plain),
  });
  return {
    d,
    utf8,
    plain,
    async [Symbol.asyncDispose]() {
      await d[Symbol.asyncDispose]();
      await utf8.stop();
      await plain.stop();
    },
  };
}

/** One message from the trusted loopback client; returns the final reply. */
async function send(port: number, from: string, to: string[], data: string, mailParams = ""): Promise<Reply> {
  using c = await SmtpClient.connect(port, { timeoutMs: 20_000 });
  await c.reply();
  assert.equal((await c.cmd("EHLO client.example")).code, 250);
  const mail = await c.cmd(`MAIL FROM:<${from}>${mailParams}`);
  assert.equal(mail.code, 250, mail.text);
  for (const rcpt of to) {
    const r = await c.cmd(`RCPT TO:<${rcpt}>`);
    assert.equal(r.code, 250, `${rcpt}: ${r.text}`);
  }
  assert.equal((await c.cmd("DATA")).code, 354);
  return await c.cmd(`${data}\r\n.`);
}

const isDsn = (m: SinkMessage) => m.mail_from === "<>" || m.mail_from === "";
const eightBit = (text: string) => [...text].some((ch) => ch.charCodeAt(0) > 0x7f);

Deno.test("IDNA-equivalent spellings of a domain are routed by its [delivery.domains] policy with the A-label on the wire", async () => {
  await using f = await fixture();
  const spellings: [string, string][] = [
    ["u1@example.test", "u1@example.test"],
    ["u2@EXAMPLE.TEST", "u2@example.test"],
    ["u3@ｅｘａｍｐｌｅ.ｔｅｓｔ", "u3@example.test"],
    ["u4@exam\u00adple.test", "u4@example.test"],
    ["u5@Ｅxample.Test", "u5@example.test"],
    ["u6@bücher.test", "u6@xn--bcher-kva.test"],
    ["u7@xn--bcher-kva.test", "u7@xn--bcher-kva.test"],
    ["u8@BÜCHER.TEST", "u8@xn--bcher-kva.test"],
    ["u9@XN--BCHER-KVA.test", "u9@xn--bcher-kva.test"],
    ["u10@ｂüｃｈｅｒ.test", "u10@xn--bcher-kva.test"],
  ];
  for (const [to] of spellings) {
    const r = await send(f.d.port, "alice@s.test", [to], `Subject: route ${to}\r\n\r\nbody`, " SMTPUTF8");
    assert.equal(r.code, 250, `${to}: ${r.text}`);
  }
  const got = await f.utf8.waitFor(spellings.length, 30_000);
  assert.deepEqual(got.flatMap((m) => m.rcpt_tos).sort(), spellings.map(([, wire]) => wire).sort());
  assert.equal((await f.plain.messages()).length, 0);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await f.utf8.messages()).filter(isDsn).length, 0, "no bounce: every spelling had its route");
});

Deno.test("SMTPUTF8 to a next hop without it: UTF-8 local parts and UTF-8 headers bounce 5.6.7, IDN and ASCII mail is delivered", async () => {
  await using f = await fixture();
  // Bounces: a UTF-8 local part; UTF-8 header fields under SMTPUTF8 with an ASCII envelope.
  assert.equal(
    (await send(f.d.port, "alice@s.test", ["jösé@plain.test"], "Subject: a\r\n\r\nb", " SMTPUTF8")).code,
    250,
  );
  assert.equal(
    (await send(f.d.port, "alice@s.test", ["ascii@plain.test"], "Subject: Grüße\r\n\r\nb", " SMTPUTF8 BODY=8BITMIME"))
      .code,
    250,
  );
  // Delivered: IDN recipients (U-label or A-label), and mail that asked for SMTPUTF8 but is all ASCII.
  const idn = ["otto@münchen.test", "anna@xn--mnchen-3ya.test"];
  assert.equal((await send(f.d.port, "alice@s.test", idn, "Subject: idn\r\n\r\nb", " SMTPUTF8")).code, 250);
  assert.equal(
    (await send(f.d.port, "alice@s.test", ["bob@plain.test"], "Subject: asked\r\n\r\nb", " SMTPUTF8")).code,
    250,
  );
  const delivered = await f.plain.waitFor(2, 30_000);
  const bySubject = (s: string) => delivered.find((m) => m.data.includes(`Subject: ${s}\r\n`));
  const idnMessage = bySubject("idn");
  assert.ok(idnMessage, "the IDN message arrived");
  assert.deepEqual(idnMessage.rcpt_tos.sort(), ["anna@xn--mnchen-3ya.test", "otto@xn--mnchen-3ya.test"]);
  assert.ok(!idnMessage.mail_options.some((o) => /SMTPUTF8/i.test(o)), idnMessage.mail_options.join(" "));
  assert.ok(!eightBit(idnMessage.data), "no 8-bit byte in the data");
  const asked = bySubject("asked");
  assert.ok(asked, "the ASCII message that asked for SMTPUTF8 arrived");
  assert.deepEqual(asked.rcpt_tos, ["bob@plain.test"]);
  assert.ok(!asked.mail_options.some((o) => /SMTPUTF8/i.test(o)));
  // The two others bounced to the sender with 553 5.6.7.
  const dsns = await eventually(async () => {
    const all = (await f.utf8.messages()).filter(isDsn);
    return all.length >= 2 && all;
  }, "two DSNs");
  assert.equal(dsns.length, 2);
  for (const dsn of dsns) {
    assert.deepEqual(dsn.rcpt_tos, ["alice@s.test"]);
    assert.match(dsn.data, /Status: 5\.6\.7/);
    assert.match(dsn.data, /does not support SMTPUTF8/);
  }
  const finals = dsns.map((m) => /Final-Recipient: [^\r]*/.exec(m.data)?.[0]).sort();
  assert.deepEqual(finals, ["Final-Recipient: rfc822; ascii@plain.test", "Final-Recipient: rfc822; jösé@plain.test"]);
  assert.equal((await f.plain.messages()).length, 2, "nothing 8-bit reached the hop without SMTPUTF8");
});

Deno.test("a next hop with SMTPUTF8 gets UTF-8 local parts, UTF-8 headers and the SMTPUTF8 parameter", async () => {
  await using f = await fixture();
  const r = await send(f.d.port, "jörg@s.test", ["jösé@example.test"], "Subject: Grüße\r\n\r\nbody", " SMTPUTF8");
  assert.equal(r.code, 250, r.text);
  const [m] = await f.utf8.waitFor(1);
  assert.ok(m);
  assert.equal(m.mail_from, "jörg@s.test");
  assert.deepEqual(m.rcpt_tos, ["jösé@example.test"]);
  assert.ok(m.mail_options.some((o) => /^SMTPUTF8$/i.test(o)), m.mail_options.join(" "));
  assert.match(m.data, /Subject: Grüße\r\n/);
});

Deno.test("unknown and unoffered ESMTP parameters get 555 5.5.4; offered ones are accepted (REQUIRETLS only over TLS)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-params-" });
  const { cert, key, caPem } = await certificateChain(dir);
  await using f = await fixture(`[tls]\ncert = "${cert}"\nkey = "${key}"\n`);
  using c = await SmtpClient.connect(f.d.port, { caCert: caPem, timeoutMs: 20_000 });
  await c.reply();
  const ehlo = await c.cmd("EHLO client.example");
  assert.doesNotMatch(ehlo.text, /REQUIRETLS/);
  const refused: [string, string, string][] = [
    ["MAIL FROM:<a@s.test> XFOO=BAR", "", "XFOO"],
    ["MAIL FROM:<a@s.test> X-ANY", "", "X-ANY"],
    ["MAIL FROM:<a@s.test> NOTIFY=SUCCESS", "", "NOTIFY"],
    ["MAIL FROM:<a@s.test> SIZE=100 XFOO=BAR", "", "XFOO"],
    ["MAIL FROM:<a@s.test> REQUIRETLS", "", "REQUIRETLS"],
    ["MAIL FROM:<a@s.test>", "RCPT TO:<b@example.test> RET=FULL", "RET"],
    ["MAIL FROM:<a@s.test>", "RCPT TO:<b@example.test> XFOO=BAR", "XFOO"],
    ["MAIL FROM:<a@s.test>", "RCPT TO:<b@example.test> ENVID=abc", "ENVID"],
    ["MAIL FROM:<a@s.test>", "RCPT TO:<b@example.test> REQUIRETLS", "REQUIRETLS"],
  ];
  const check = async (label: string) => {
    for (const [mail, rcpt, name] of refused) {
      // REQUIRETLS on MAIL is offered once TLS is up (RFC 8689): accepted there, checked below.
      if (label === "over STARTTLS" && rcpt === "" && name === "REQUIRETLS") continue;
      assert.equal((await c.cmd("RSET")).code, 250);
      const m = await c.cmd(mail);
      const r = rcpt ? (assert.equal(m.code, 250, `${label} ${mail}: ${m.text}`), await c.cmd(rcpt)) : m;
      // smtp-server itself refuses REQUIRETLS on MAIL over plain text (RFC 8689 wants TLS first).
      const expected = label === "plain text" && mail.endsWith("REQUIRETLS")
        ? "530 5.7.0 REQUIRETLS not permitted on non-TLS connections"
        : `555 5.5.4 Unsupported option: ${name}`;
      assert.equal(r.text, expected, `${label} ${rcpt || mail}`);
    }
    assert.equal((await c.cmd("RSET")).code, 250);
    assert.equal((await c.cmd("MAIL FROM:<a@s.test> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=e1 SMTPUTF8")).code, 250);
    assert.equal((await c.cmd("RCPT TO:<b@example.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.test")).code, 250);
  };
  await check("plain text");
  await c.startTls();
  const again = await c.cmd("EHLO client.example");
  assert.match(again.text, /REQUIRETLS/, "offered once the session is protected");
  await check("over STARTTLS");
  assert.equal((await c.cmd("RSET")).code, 250);
  assert.equal((await c.cmd("MAIL FROM:<a@s.test> REQUIRETLS")).code, 250, "REQUIRETLS accepted over TLS");
  await Deno.remove(dir, { recursive: true });
});
