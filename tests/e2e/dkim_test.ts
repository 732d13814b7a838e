/**
 * DKIM signing through a live daemon (#14): mail relayed from relay_networks and mail
 * submitted on a submission listener is signed once (RSA-2048 and Ed25519), stored signed,
 * delivered to an aiosmtpd sink, and the delivered message verifies with mailauth and with
 * dkimpy against keys published in dnsmasq; a 451 then 250 delivers it with one signature
 * per key (a retry never re-signs); a large message (own spool file) is signed too.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startDaemon } from "../../testing/daemon.ts";
import { sendMessage, SmtpClient } from "../../testing/smtp_client.ts";
import { hashPassword } from "../../src/smtp/mod.ts";
import { certificateChain } from "../helpers/certificate_chain.ts";
import { startScriptSink } from "../helpers/script_sink.ts";
import { startTxtDnsServer } from "../helpers/dns_txt.ts";
import { createMailauthResolver, denoDnsLookup, verifyMessage, writeDkimKey } from "../../src/auth/mod.ts";
import { dkimpy } from "../auth/fixtures.ts";
import { REPO } from "../../testing/mod.ts";

const MSG = (subject: string, body = "Hello Bob,\r\nsigned by Empath.\r\n") =>
  `From: Alice <alice@sign.test>\r\nTo: bob@rcpt.test\r\nSubject: ${subject}\r\n` +
  `Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, "")}@sign.test>\r\n\r\n${body}`;

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "empath-dkim-" });
  const rsa = await writeDkimKey(join(dir, "rsa.pem"), "rsa");
  const ed = await writeDkimKey(join(dir, "ed.pem"), "ed25519");
  const dns = await startTxtDnsServer({
    txt: [["r1._domainkey.sign.test", rsa.record], ["e1._domainkey.sign.test", ed.record]],
  });
  const dkimToml = `[dkim]\nenabled = true\n` +
    `[[dkim.keys]]\ndomain = "sign.test"\nselector = "r1"\ntype = "rsa"\nkey_file = "${join(dir, "rsa.pem")}"\n` +
    `[[dkim.keys]]\ndomain = "sign.test"\nselector = "e1"\ntype = "ed25519"\nkey_file = "${join(dir, "ed.pem")}"\n`;
  return { dir, dns, dkimToml };
}

async function verifyBoth(data: string, dnsPort: number) {
  const bytes = new TextEncoder().encode(data.replace(/\r?\n/g, "\r\n"));
  const verdict = await verifyMessage(bytes, {
    authservId: "mx.rcpt.test",
    resolver: createMailauthResolver(denoDnsLookup({ nameServer: { ipAddr: "127.0.0.1", port: dnsPort } })),
    clientIp: "192.0.2.1",
    mailFrom: "alice@sign.test",
  });
  assert.deepEqual(verdict.dkim.map((d) => [d.result, d.selector, d.algorithm]), [
    ["pass", "r1", "rsa-sha256"],
    ["pass", "e1", "ed25519-sha256"],
  ]);
  assert.equal(await dkimpy(["verify", String(dnsPort)], bytes), "pass\npass\n");
}

Deno.test("relayed mail is signed once (RSA + Ed25519), survives a 451 retry unchanged, and verifies with mailauth and dkimpy", async () => {
  const { dir, dns, dkimToml } = await setup();
  await using sink = await startScriptSink({ script: { data: ["451 4.3.0 busy, try later"] } });
  const d = await startDaemon({
    toml: `${dkimToml}[delivery]\nrelay_host = "127.0.0.1:${sink.port}"\ntls = "none"\n` +
      `[delivery.retry]\nbase_delay = "1s"\njitter = 0\n`,
  });
  try {
    assert.equal((await sendMessage(d.port, "alice@sign.test", ["bob@rcpt.test"], MSG("relayed"))).code, 250);
    const large = MSG("large", ("x".repeat(70) + "\r\n").repeat(6000)); // ~430 KB: its own spool file
    assert.equal((await sendMessage(d.port, "alice@sign.test", ["bob@rcpt.test"], large)).code, 250);
    await d.waitForLog(/status=\W*deferred.*451 4\.3\.0 busy/);
    const got = await sink.waitFor(2, 20_000);
    for (const m of got) {
      const sigs = m.data.match(/^DKIM-Signature:/gim) ?? [];
      assert.equal(sigs.length, 2, "one signature per key, also after the retry");
      assert.match(m.data, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=sign\.test; s=r1;/);
      await verifyBoth(m.data, dns.port);
    }
  } finally {
    await d.stop();
    await d.cleanup();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("inbound mail from outside on an mx listener is not signed", async () => {
  const { dir, dns, dkimToml } = await setup();
  await using sink = await startScriptSink();
  const d = await startDaemon({
    toml: `${dkimToml}[relay]\nrelay_networks = ["192.0.2.0/24"]\nlocal_domains = ["rcpt.test"]\n` +
      `[delivery]\ntls = "none"\n[delivery.domains."rcpt.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
  });
  try {
    assert.equal((await sendMessage(d.port, "alice@sign.test", ["bob@rcpt.test"], MSG("inbound"))).code, 250);
    const [m] = await sink.waitFor(1, 10_000);
    assert.doesNotMatch(m!.data, /^DKIM-Signature:/im);
  } finally {
    await d.stop();
    await d.cleanup();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mail submitted on an smtps listener (AUTH) is signed and verifies", async () => {
  const { dir, dns, dkimToml } = await setup();
  const { cert, key, caPem } = await certificateChain(dir);
  await Deno.writeTextFile(join(dir, "users"), `alice:${await hashPassword("s3cret pass")}\n`);
  await using sink = await startScriptSink();
  const d = await startDaemon({
    defaultListener: false,
    toml: `[[listeners]]\nname = "smtps"\naddress = "127.0.0.1:0"\nrole = "smtps"\n` +
      `[tls]\ncert = "${cert}"\nkey = "${key}"\n[auth]\nusers_file = "${join(dir, "users")}"\n` +
      `[relay]\nrelay_networks = []\n${dkimToml}[delivery]\nrelay_host = "127.0.0.1:${sink.port}"\ntls = "none"\n`,
  });
  try {
    const c = await SmtpClient.connect(d.portOf("smtps"), { tls: "implicit", caCert: caPem });
    await c.reply();
    await c.cmd("EHLO client.test");
    assert.equal((await c.cmd("AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz")).code, 235);
    assert.equal((await c.cmd("MAIL FROM:<alice@sign.test>")).code, 250);
    assert.equal((await c.cmd("RCPT TO:<bob@rcpt.test>")).code, 250);
    assert.equal((await c.cmd("DATA")).code, 354);
    assert.equal((await c.cmd(MSG("submitted") + ".")).code, 250);
    c.close();
    const [m] = await sink.waitFor(1, 10_000);
    assert.equal((m!.data.match(/^DKIM-Signature:/gim) ?? []).length, 2);
    await verifyBoth(m!.data, dns.port);
  } finally {
    await d.stop();
    await d.cleanup();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with a data-hook module: signed from the module's file; ctx.skipSigning() at MAIL FROM or in data leaves it unsigned", async () => {
  const { dir, dns, dkimToml } = await setup();
  await using sink = await startScriptSink();
  const d = await startDaemon({
    toml: `${dkimToml}[[modules]]\npath = "${join(REPO, "tests/modules/fixtures/auth_probe.ts")}"\n` +
      `[delivery]\nrelay_host = "127.0.0.1:${sink.port}"\ntls = "none"\n`,
  });
  try {
    for (const sender of ["alice@sign.test", "nosign@sign.test", "datanosign@sign.test"]) {
      assert.equal((await sendMessage(d.port, sender, ["bob@rcpt.test"], MSG(sender))).code, 250);
    }
    const got = await sink.waitFor(3, 15_000);
    const bySender = new Map(got.map((m) => [m.mail_from, m.data]));
    await verifyBoth(bySender.get("alice@sign.test")!, dns.port);
    assert.doesNotMatch(bySender.get("nosign@sign.test")!, /^DKIM-Signature:/im);
    assert.doesNotMatch(bySender.get("datanosign@sign.test")!, /^DKIM-Signature:/im);
  } finally {
    await d.stop();
    await d.cleanup();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
