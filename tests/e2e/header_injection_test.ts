/**
 * No client text can become a header line of its own: CR, LF, NUL and other control
 * characters in EHLO/HELO names, MAIL FROM / RCPT TO addresses and parameters (ENVID,
 * ORCPT), and PROXY headers, checked against a live daemon by reading back the stored
 * messages, a DSN and the logs. (AUTH identities: tests/e2e/auth_bruteforce_test.ts.)
 *
 * Decisions:
 *
 * - Control characters (C0, DEL, C1) inside a command are refused, not sanitized: EHLO/HELO
 *   `501`, MAIL FROM `501 5.1.7`, RCPT TO `501 5.1.3`, bad parameter values `501` — also
 *   when they arrive xtext-encoded (`ENVID=a+0D+0Ab`). A refused EHLO sets no name.
 * - A bare LF ends a command line (like Postfix's default `smtpd_forbid_bare_newline =
 *   normal`): `EHLO a\nX-Injected: yes` is two commands, `EHLO a` and an unknown command
 *   (`500`), so the text after the LF never reaches a header. (Message data is stricter:
 *   see smtp.bare_newline and smuggling_test.ts.)
 * - U+2028/U+2029 (line ends to some parsers) are whitespace to the command parser, so they
 *   split a command rather than hide inside a name, address or value: `501` as well.
 * - ENVID must be printable US-ASCII (RFC 3461 4.4) and ORCPT's address too unless its
 *   type is `utf-8` (RFC 6533): `501 5.5.4`. Values are stored decoded once and written
 *   into DSNs as stored: `ENVID=a+2B0D+2B0A…` is the literal text `a+0D+0A…` (it used to
 *   be decoded a second time when the DSN was built, which made it a line break).
 * - EHLO names are printable text only in `Received:`: anything else, and `(`, `)`, `;`
 *   and `\` (which would fake a comment or the date clause), becomes `?`.
 * - A PROXY header with any byte outside printable ASCII, or not ending in CRLF, drops the
 *   connection before the greeting; the log line names the offending byte, not the text.
 */
import assert from "node:assert/strict";
import { ctl } from "../../testing/ctl.ts";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";
import { spooledMessages } from "../../testing/spool_reader.ts";

const TOML = `[relay]\nlocal_domains = ["local.test"]\n[smtp]\nmax_errors = 1000\n` +
  `[[listeners]]\nname = "proxied"\naddress = "127.0.0.1:0"\nrole = "mx"\nproxy_protocol = ["127.0.0.0/8"]\n`;

/** The stored message whose header section contains this Subject. */
async function storedBySubject(d: TestDaemon, subject: string): Promise<string> {
  for (const text of (await spooledMessages(d.dataDir)).values()) {
    if (text.includes(`\r\nSubject: ${subject}\r\n`)) return text;
  }
  throw new Error(`no stored message with Subject ${subject}`);
}

/** The header section's lines (without the blank line). */
function headerLines(message: string): string[] {
  return message.slice(0, message.indexOf("\r\n\r\n")).split("\r\n");
}

/** Asserts the header section is exactly Empath's Received (3 lines) and the Subject. */
function assertExactHeaders(message: string, helo: string, address: string, subject: string) {
  const lines = headerLines(message);
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const expected = [
    new RegExp(`^Received: from ${esc(helo)} \\(\\[${esc(address)}\\]\\)$`),
    /^\tby \S+ \(Empath\) with ESMTP id [0-9A-Z]{26}$/,
    /^\tfor <b@local\.test>; \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$/,
    new RegExp(`^Subject: ${esc(subject)}$`),
  ];
  assert.equal(lines.length, expected.length, `header lines: ${JSON.stringify(lines)}`);
  lines.forEach((line, i) => assert.match(line, expected[i]!, JSON.stringify(lines))); // same length
  // deno-lint-ignore no-control-regex
  assert.ok(!/[\x00-\x08\x0a-\x1f\x7f]/.test(lines.join("")), "no control characters in the header");
}

async function sendOne(c: SmtpClient, subject: string): Promise<string> {
  assert.equal((await c.cmd("MAIL FROM:<a@remote.test>")).code, 250);
  assert.equal((await c.cmd("RCPT TO:<b@local.test>")).code, 250);
  assert.equal((await c.cmd("DATA")).code, 354);
  const r = await c.cmd(`Subject: ${subject}\r\n\r\nbody\r\n.`);
  assert.equal(r.code, 250, r.text);
  return /queued as (\S+)/.exec(r.text)![1]!;
}

/** True when no log line (one JSON object per line) was split by client text. */
function logsIntact(d: TestDaemon): boolean {
  return d.logs.every((line) => {
    if (!line.startsWith("{")) return !/^X-/.test(line);
    try {
      JSON.parse(line);
      return true;
    } catch {
      return false;
    }
  });
}

Deno.test("EHLO/HELO names with control characters get 501; a bare LF ends the command; Received stays one field", async () => {
  await using d = await startDaemon({ toml: TOML, logLevel: "info" });
  const c = await SmtpClient.connect(d.portOf("mx"));
  try {
    assert.equal((await c.reply()).code, 220);
    const hostile = [
      "EHLO a\x00b.test",
      "EHLO a.test\rX-Injected: yes",
      "HELO a\x01b.test",
      "EHLO a\x0bb.test",
      "EHLO a\x1bb.test",
      "EHLO a\x7fb.test",
      "EHLO a\u0085b.test",
      "HELO a.test\r\x00",
      "EHLO host\u2028x-injected:yes",
    ];
    for (const line of hostile) {
      assert.match((await c.cmd(line)).text, /^501 /, JSON.stringify(line));
    }
    assert.equal((await c.cmd("MAIL FROM:<a@remote.test>")).code, 503, "a refused EHLO sets no name");

    // Bare LF: two commands, the second unknown.
    await c.send("EHLO evil.test\nX-Injected: yes\r\n");
    assert.equal((await c.reply()).code, 250);
    assert.match((await c.reply()).text, /^500 /);
    await sendOne(c, "bare lf");

    // Printable but misleading, and non-ASCII: sanitized in Received.
    assert.equal((await c.cmd("EHLO x(y);z\\w.test")).code, 250);
    await sendOne(c, "parens");
    assert.equal((await c.cmd("EHLO h\u00e9llo.test")).code, 250);
    await sendOne(c, "non-ascii");
  } finally {
    c.close();
  }
  assertExactHeaders(await storedBySubject(d, "bare lf"), "evil.test", "127.0.0.1", "bare lf");
  assertExactHeaders(await storedBySubject(d, "parens"), "x?y??z?w.test", "127.0.0.1", "parens");
  assertExactHeaders(await storedBySubject(d, "non-ascii"), "h?llo.test", "127.0.0.1", "non-ascii");
  assert.ok(logsIntact(d));
});

Deno.test("MAIL FROM / RCPT TO addresses and ENVID/ORCPT cannot smuggle a line into the record, a DSN or the audit log", async () => {
  await using d = await startDaemon({ toml: TOML, logLevel: "info" });
  const c = await SmtpClient.connect(d.portOf("mx"));
  let id: string;
  try {
    await c.reply();
    await c.cmd("EHLO params.test");
    const refusedMail: [string, RegExp][] = [
      ["MAIL FROM:<a@remote.test> ENVID=x+0D+0AX-Injected:+20yes", /^501 /],
      ["MAIL FROM:<a@remote.test> ENVID=x+0Ay", /^501 /],
      ["MAIL FROM:<a@remote.test> ENVID=x\x01y", /^501 /],
      ["MAIL FROM:<a@remote.test> ENVID=x+00", /^501 /],
      ["MAIL FROM:<a@remote.test> ENVID=caf+C3+A9", /^501 5\.5\.4 ENVID must be printable US-ASCII/],
      ["MAIL FROM:<a@remote.test> ENVID=café", /^501 5\.5\.4 /],
      ["MAIL FROM:<a\r@remote.test>", /^501 5\.1\.7 /],
      ["MAIL FROM:<a\x00@remote.test>", /^501 5\.1\.7 /],
      ["MAIL FROM:<a\u2028b@remote.test>", /^501 5\.1\.7 /],
    ];
    for (const [line, expected] of refusedMail) {
      assert.match((await c.cmd(line)).text, expected, JSON.stringify(line));
    }

    // Decodes (once) to the printable text "a+0D+0AX-Injected:+20yes": accepted and kept literal.
    assert.equal((await c.cmd("MAIL FROM:<a@remote.test> ENVID=a+2B0D+2B0AX-Injected:+2B20yes")).code, 250);
    const refusedRcpt: [string, RegExp][] = [
      ["RCPT TO:<b@local.test> ORCPT=rfc822;b+0D+0AX-Orcpt:+20yes@local.test", /^501 /],
      ["RCPT TO:<b@local.test> ORCPT=rfc822;bé@local.test", /^501 5\.5\.4 ORCPT address must be printable/],
      ["RCPT TO:<b@local.test> ORCPT=utf-8;b+E2+80+A8@local.test", /^501 /],
      ["RCPT TO:<b\u2028c@local.test>", /^501 5\.1\.3 /],
      ["RCPT TO:<b\x1b@local.test>", /^501 5\.1\.3 /],
    ];
    for (const [line, expected] of refusedRcpt) {
      const reply = await c.cmd(line);
      assert.match(reply.text, expected, `${JSON.stringify(line)}: ${reply.text}`);
    }
    assert.equal(
      (await c.cmd("RCPT TO:<b@local.test> ORCPT=rfc822;b+2B0D+2B0AX-Orcpt:+2B20yes@local.test")).code,
      250,
    );
    assert.equal((await c.cmd("DATA")).code, 354);
    const r = await c.cmd("Subject: dsn params\r\n\r\nbody\r\n.");
    assert.equal(r.code, 250, r.text);
    id = /queued as (\S+)/.exec(r.text)![1]!;
  } finally {
    c.close();
  }
  assertExactHeaders(await storedBySubject(d, "dsn params"), "params.test", "127.0.0.1", "dsn params");

  // The values are stored as decoded once …
  const view = await ctl(d, ["queue", "view", id, "--json"]);
  assert.equal(view.code, 0, view.stderr);
  const record = JSON.parse(view.stdout);
  const rec = record.record ?? record;
  assert.equal(rec.dsn.envid, "a+0D+0AX-Injected:+20yes");
  assert.equal(rec.recipients[0].orcpt, "rfc822;b+0D+0AX-Orcpt:+20yes@local.test");

  // … and a DSN carries them literally, one field each.
  assert.equal((await ctl(d, ["queue", "bounce", id])).code, 0);
  let dsn: string | undefined;
  for (let i = 0; i < 50 && !dsn; i++) {
    dsn = [...(await spooledMessages(d.dataDir)).values()].find((m) => m.includes("report-type=delivery-status"));
    if (!dsn) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(dsn, "the bounce was queued");
  const status = dsn.slice(dsn.indexOf("Content-Type: message/delivery-status"));
  const [envelope = [], recipient = []] = status.split("\r\n\r\n").slice(1, 3).map((block) => block.split("\r\n"));
  assert.deepEqual(envelope.map((l) => l.split(":")[0]), [
    "Reporting-MTA",
    "X-Empath-Queue-ID",
    "Original-Envelope-Id",
    "Arrival-Date",
  ]);
  assert.equal(envelope[2], "Original-Envelope-Id: a+0D+0AX-Injected:+20yes");
  assert.deepEqual(recipient.map((l) => l.split(":")[0]), [
    "Original-Recipient",
    "Final-Recipient",
    "Action",
    "Status",
  ]);
  assert.equal(recipient[0], "Original-Recipient: rfc822; b+0D+0AX-Orcpt:+20yes@local.test");
  assert.doesNotMatch(dsn, /^X-(Injected|Orcpt)/m);

  const audit = (await Deno.readTextFile(`${d.dataDir}/audit.log`)).trimEnd().split("\n");
  assert.ok(audit.length > 0);
  for (const line of audit) assert.doesNotThrow(() => JSON.parse(line), line);
  assert.ok(logsIntact(d));
});

Deno.test("PROXY headers with CR, LF, NUL or other control bytes are dropped before the greeting", async () => {
  await using d = await startDaemon({ toml: TOML, logLevel: "info" });
  const hostile = [
    "PROXY TCP4 203.0.113.9 127.0.0.1 4000 25\n",
    "PROXY TCP4 203.0.113.9\r\nX-Injected: yes 127.0.0.1 4000 25\r\n",
    "PROXY TCP4 203.0.113.9\rX-Injected: yes 127.0.0.1 4000 25\r\n",
    "PROXY TCP4 203.0.113.9\x00 127.0.0.1 4000 25\r\n",
    "PROXY TCP4 203.0.113.9\x1b 127.0.0.1 4000 25\r\n",
    "PROXY TCP4 203.0.113.9\u0085 127.0.0.1 4000 25\r\n",
    "PROXY TCP4 203.0.113.9\u2028 127.0.0.1 4000 25\r\n",
  ];
  for (const header of hostile) {
    const c = await SmtpClient.connect(d.portOf("proxied"));
    try {
      await c.send(header + "EHLO after.test\r\n");
      assert.ok(await c.closedByServer(), `${JSON.stringify(header)} must drop the connection`);
    } finally {
      c.close();
    }
  }
  const ok = await SmtpClient.connect(d.portOf("proxied"));
  try {
    await ok.send("PROXY TCP4 203.0.113.9 127.0.0.1 4000 25\r\n");
    assert.equal((await ok.reply()).code, 220);
    assert.equal((await ok.cmd("EHLO proxied.test")).code, 250);
    await sendOne(ok, "after proxy");
  } finally {
    ok.close();
  }
  const stored = await spooledMessages(d.dataDir);
  assert.equal(stored.size, 1, "only the well-formed session stored a message");
  assertExactHeaders(await storedBySubject(d, "after proxy"), "proxied.test", "203.0.113.9", "after proxy");
  const drops = d.logs.filter((l) => l.includes("bad PROXY header"));
  assert.equal(drops.length, hostile.length, drops.join("\n"));
  assert.ok(logsIntact(d));
});
