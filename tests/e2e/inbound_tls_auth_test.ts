/**
 * Inbound TLS, AUTH and PROXY protocol over real sockets: STARTTLS on an mx
 * listener, a submission listener that wants STARTTLS before AUTH, implicit TLS,
 * and PROXY v1/v2 headers whose client address drives logging and relay policy.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hashPassword } from "../../src/smtp/mod.ts";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { selfSignedCertificate } from "../helpers/self_signed.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";
import { spooledMessages } from "../../testing/spool_reader.ts";
import { tempDir } from "../../testing/temp.ts";

async function swaks(args: string[]) {
  const out = await new Deno.Command("swaks", { args, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

/** Writes a certificate and a users file into `dir`; returns the daemon's TOML. */
async function setup(dir: string): Promise<string> {
  const { cert, key } = await selfSignedCertificate(dir);
  await Deno.writeTextFile(join(dir, "users"), `# test users\nalice:${await hashPassword("s3cret pass")}\n`);
  return `[tls]\ncert = "${cert}"\nkey = "${key}"\n[auth]\nusers_file = "${join(dir, "users")}"\n` +
    `[relay]\nlocal_domains = ["local.test"]\nrelay_networks = []\n` +
    `[[listeners]]\nname = "submission"\naddress = "127.0.0.1:0"\nrole = "submission"\n` +
    `[[listeners]]\nname = "smtps"\naddress = "127.0.0.1:0"\nrole = "smtps"\n` +
    `[[listeners]]\nname = "proxied"\naddress = "127.0.0.1:0"\nrole = "mx"\nproxy_protocol = ["127.0.0.0/8"]\n`;
}

async function spooled(d: TestDaemon): Promise<string[]> {
  const all = await spooledMessages(d.dataDir);
  return [...all.keys()].sort().map((id) => all.get(id)!);
}

Deno.test("inbound TLS, AUTH and PROXY protocol behave as configured", async (t) => {
  await using dir = await tempDir("empath-inbound-");
  await using d = await startDaemon({ toml: await setup(dir.path) });
  await t.step("an mx listener with a certificate offers STARTTLS and records TLS in Received", async () => {
    const r = await swaks([
      "--server",
      `127.0.0.1:${d.portOf("mx")}`,
      "--tls",
      "--from",
      "a@remote.test",
      "--to",
      "b@local.test",
    ]);
    assert.equal(r.code, 0, r.text);
    const [msg] = await spooled(d);
    assert.ok(msg, "the message is spooled");
    assert.match(msg, /with ESMTPS id/);
    assert.match(msg, /\(using TLSv1\.[23] with cipher \S+\)/);
  });

  await t.step("submission hides AUTH before STARTTLS and wants AUTH before MAIL", async () => {
    const c = await SmtpClient.connect(d.portOf("submission"));
    await c.reply();
    const ehlo = await c.cmd("EHLO x.test");
    assert.ok(ehlo.lines.some((l) => l.includes("STARTTLS")));
    assert.ok(!ehlo.lines.some((l) => l.includes("AUTH")), ehlo.text);
    assert.ok((await c.cmd("AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz")).code >= 500);
    assert.equal((await c.cmd("MAIL FROM:<alice@local.test>")).code, 530);
    c.close();
  });

  await t.step(
    "after STARTTLS, AUTH PLAIN and LOGIN succeed and allow relaying; a wrong password gets 535",
    async () => {
      for (const type of ["PLAIN", "LOGIN"]) {
        const r = await swaks([
          "--server",
          `127.0.0.1:${d.portOf("submission")}`,
          "--tls",
          "--auth",
          type,
          "--auth-user",
          "alice",
          "--auth-password",
          "s3cret pass",
          "--from",
          "alice@local.test",
          "--to",
          "someone@remote.example",
        ]);
        assert.equal(r.code, 0, r.text);
        assert.match(r.text, /235 /);
      }
      assert.match((await spooled(d)).at(-1)!, /with ESMTPSA id/);
      const bad = await swaks([
        "--server",
        `127.0.0.1:${d.portOf("submission")}`,
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice",
        "--auth-password",
        "wrong",
        "--from",
        "alice@local.test",
        "--to",
        "someone@remote.example",
      ]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.text, /535 5\.7\.8/);
    },
  );

  await t.step("implicit TLS (smtps) with AUTH delivers; a plain-text client gets no greeting", async () => {
    const r = await swaks([
      "--server",
      `127.0.0.1:${d.portOf("smtps")}`,
      "--tlsc",
      "--auth",
      "PLAIN",
      "--auth-user",
      "alice",
      "--auth-password",
      "s3cret pass",
      "--from",
      "alice@local.test",
      "--to",
      "x@remote.example",
    ]);
    assert.equal(r.code, 0, r.text);
    const plain = await SmtpClient.connect(d.portOf("smtps"));
    await assert.rejects(() => plain.reply(1500));
    plain.close();
  });

  await t.step("a PROXY v1 header sets the client address used in Received and for relay policy", async () => {
    const c = await SmtpClient.connect(d.portOf("proxied"));
    await c.send("PROXY TCP4 203.0.113.7 127.0.0.1 4000 25\r\n");
    assert.equal((await c.reply()).code, 220);
    await c.cmd("EHLO proxied.test");
    await c.cmd("MAIL FROM:<p@remote.test>");
    const denied = await c.cmd("RCPT TO:<x@elsewhere.test>");
    assert.match(denied.text, /^554 5\.7\.1/);
    assert.equal((await c.cmd("RCPT TO:<y@local.test>")).code, 250);
    await c.cmd("DATA");
    const r = await c.cmd("Subject: proxied\r\n\r\nbody\r\n.");
    assert.equal(r.code, 250);
    c.close();
    assert.ok((await spooled(d)).some((m) => m.startsWith("Received: from proxied.test ([203.0.113.7])")));
  });

  await t.step("a PROXY v2 header with an IPv6 client is understood; garbage is dropped", async () => {
    const sig = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
    const src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];
    const dst = [...new Array(15).fill(0), 1];
    const header = Uint8Array.from([...sig, 0x21, 0x21, 0, 36, ...src, ...dst, 0x1f, 0x90, 0, 25]);
    const c = await SmtpClient.connect(d.portOf("proxied"));
    await c.send(header);
    assert.equal((await c.reply()).code, 220);
    await c.cmd("EHLO v2.test");
    await c.cmd("MAIL FROM:<p@remote.test>");
    await c.cmd("RCPT TO:<z@local.test>");
    await c.cmd("DATA");
    assert.equal((await c.cmd("Subject: v2\r\n\r\nbody\r\n.")).code, 250);
    c.close();
    assert.ok((await spooled(d)).some((m) => m.includes("([IPv6:2001:db8::42])")));
    const junk = await SmtpClient.connect(d.portOf("proxied"));
    await junk.send("HELLO THERE\r\n");
    assert.ok(await junk.closedByServer());
    junk.close();
    // The daemon keeps serving.
    const ok = await SmtpClient.connect(d.portOf("mx"));
    assert.equal((await ok.reply()).code, 220);
    ok.close();
  });
});
