/**
 * Hardening (#13), class 2: the message header path, against a live daemon.
 *
 * - A header section over `smtp.max_header_size` is refused with `552 5.3.4` (sent at once or
 *   dripped), never passed on uninspected; nothing is queued.
 * - The loop check holds for large header sections: 50+ Received headers are `554 5.4.6` even
 *   after 190 KB of other fields, or past 256 KiB when the limit is raised.
 * - Our Received is the first line of every stored message, large headers included.
 * - A first data line starting with a space or tab cannot continue our Received: the stored
 *   message has an empty line right after our trace header, so the client text is body.
 * - Submission (AUTH on smtps) removes Bcc, Resent-Bcc and Return-Path in any spelling and
 *   folding; an mx listener keeps them.
 * - A header dripped in 20-byte writes costs about the CPU of the same bytes sent as body.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hashPassword } from "../../src/smtp/mod.ts";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { spooledIds, spooledMessages } from "../../testing/spool_reader.ts";
import { type Reply, SmtpClient } from "../../testing/smtp_client.ts";
import { certificateChain } from "../helpers/certificate_chain.ts";
import { cpuTicks } from "../helpers/hardening.ts";

const PASSWORD = "header path pass";

function daemon(smtp = ""): Promise<TestDaemon> {
  return startDaemon({
    logLevel: "info",
    toml: `[relay]\nlocal_domains = ["local.test"]\nreject_unknown_sender_domain = false\n` +
      `[recipients]\nunknown = "accept"\n[smtp]\nmax_errors = 1000\n${smtp}`,
  });
}

/** `n` header fields of about 80 bytes each. */
function filler(n: number, name = "X-Filler"): string {
  let s = "";
  for (let i = 0; i < n; i++) s += `${name}-${String(i).padStart(5, "0")}: ${"f".repeat(58)}\r\n`;
  return s;
}

function received(n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) {
    s += `Received: from hop${i}.example by hop${i + 1}.example; Tue, 1 Jan 2030 00:00:00 +0000\r\n`;
  }
  return s;
}

/** One message over a fresh session; `data` written in `chunk`-byte writes (all at once when 0). */
async function send(port: number, data: string, chunk = 0, options: { ehlo?: string } = {}): Promise<Reply> {
  using c = await SmtpClient.connect(port, { timeoutMs: 60_000 });
  await c.reply();
  assert.equal((await c.cmd(`EHLO ${options.ehlo ?? "client.example"}`)).code, 250);
  assert.equal((await c.cmd("MAIL FROM:<a@remote.example>")).code, 250);
  assert.equal((await c.cmd("RCPT TO:<bob@local.test>")).code, 250);
  assert.equal((await c.cmd("DATA")).code, 354);
  await drip(c, data, chunk);
  return await c.cmd(".", 120_000);
}

async function drip(c: SmtpClient, data: string, chunk: number): Promise<void> {
  const bytes = new TextEncoder().encode(data.endsWith("\r\n") ? data : data + "\r\n");
  if (chunk <= 0) return await c.send(bytes);
  for (let off = 0, n = 0; off < bytes.length; off += chunk, n++) {
    await c.send(bytes.subarray(off, off + chunk));
    // A pause every few writes, so the daemon reads small pieces instead of one big buffer.
    if (n % 5 === 4) await new Promise((r) => setTimeout(r, 0));
  }
}

async function only(d: TestDaemon): Promise<string> {
  const all = [...(await spooledMessages(d.dataDir)).values()];
  assert.equal(all.length, 1, `one message stored, got ${all.length}`);
  return all[0]!;
}

Deno.test("a header section over max_header_size is refused with 552 5.3.4, sent at once or dripped, and nothing is queued", async () => {
  await using d = await daemon();
  const big = `Subject: big\r\n${filler(3600)}\r\nbody\r\n`; // 273.6 KB of header > 256 KiB (262,144)
  for (const chunk of [0, 4096, 700]) {
    const r = await send(d.port, big, chunk);
    assert.equal(r.code, 552, `chunk ${chunk}: ${r.text}`);
    assert.match(r.text, /^552 5\.3\.4 /);
  }
  await using small = await daemon(`max_header_size = "8KiB"\n`);
  const r = await send(small.port, `Subject: s\r\n${filler(110)}\r\nbody\r\n`, 100);
  assert.match(r.text, /^552 5\.3\.4 /);
  // Under the limit, the same shape passes; a big body is not a big header.
  assert.equal((await send(small.port, `Subject: s\r\n${filler(90)}\r\nbody\r\n`)).code, 250);
  assert.equal((await send(small.port, `Subject: s\r\n\r\n${filler(3000)}`)).code, 250);
  assert.deepEqual(await spooledIds(d.dataDir), []);
  assert.equal((await spooledIds(small.dataDir)).length, 2);
});

Deno.test("50 or more Received headers are 554 5.4.6 after a big header, and past 256 KiB when the limit is raised", async () => {
  await using d = await daemon();
  const loop = await send(d.port, `${filler(2500)}${received(50)}Subject: loop\r\n\r\nbody\r\n`, 1000);
  assert.equal(loop.code, 554, loop.text);
  assert.match(loop.text, /^554 5\.4\.6 Too many hops: 50 Received headers/);
  const early = await send(d.port, `${received(60)}${filler(2500)}Subject: loop\r\n\r\nbody\r\n`);
  assert.match(early.text, /^554 5\.4\.6 Too many hops: 60 Received headers/);
  assert.equal((await send(d.port, `${received(49)}${filler(2500)}Subject: 49 hops\r\n\r\nbody\r\n`)).code, 250);

  await using raised = await daemon(`max_header_size = "1MiB"\n`);
  const past = await send(raised.port, `${filler(4000)}${received(51)}Subject: loop\r\n\r\nbody\r\n`, 8192);
  assert.match(past.text, /^554 5\.4\.6 Too many hops: 51 Received headers/);
  // A 304 KB header section that is fine is stored with our Received first.
  assert.equal((await send(raised.port, `${received(3)}${filler(4000)}Subject: big ok\r\n\r\nbody\r\n`)).code, 250);
  const text = await only(raised);
  assert.match(text, /^Received: from client\.example \(/);
  assert.ok(text.indexOf("Received: from hop0.example") > 0);
  assert.ok(text.indexOf("X-Filler-03999") > 300_000);
  assert.equal((await spooledIds(d.dataDir)).length, 1);
});

Deno.test("a first data line starting with a space or tab becomes body, never a continuation of our Received", async () => {
  await using d = await daemon();
  const cases = [" injected-by-client", "\tinjected-by-client", "  (using TLSv1.3) injected-by-client"];
  for (const first of cases) {
    assert.equal((await send(d.port, `${first}\r\nSubject: after\r\n\r\nbody\r\n`)).code, 250);
  }
  const stored = [...(await spooledMessages(d.dataDir)).values()];
  assert.equal(stored.length, cases.length);
  for (const text of stored) {
    const header = text.slice(0, text.indexOf("\r\n\r\n") + 2);
    assert.match(header, /^Received: from client\.example /);
    assert.doesNotMatch(header, /injected-by-client/, "the client's line is not part of the header section");
    const rest = text.slice(header.length);
    assert.match(rest, /^\r\n[ \t]+(\(using TLSv1\.3\) )?injected-by-client\r\nSubject: after\r\n/);
  }
  // An ordinary first line is unchanged: no empty line is inserted.
  await using d2 = await daemon();
  assert.equal((await send(d2.port, "Subject: plain\r\n\r\nbody\r\n")).code, 250);
  assert.match(await only(d2), /\r\nSubject: plain\r\n\r\nbody\r\n$/);
});

Deno.test("submission removes Bcc, Resent-Bcc and Return-Path in any spelling and folding; mx keeps them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-hdr-sub-" });
  const { cert, key, caPem } = await certificateChain(dir);
  await Deno.writeTextFile(join(dir, "users"), `alice:${await hashPassword(PASSWORD)}\n`);
  await using d = await startDaemon({
    logLevel: "info",
    toml: `[tls]\ncert = "${cert}"\nkey = "${key}"\n[auth]\nusers_file = "${join(dir, "users")}"\n` +
      `[relay]\nlocal_domains = ["local.test"]\nrelay_networks = []\nreject_unknown_sender_domain = false\n` +
      `[recipients]\nunknown = "accept"\n` +
      `[[listeners]]\nname = "smtps"\naddress = "127.0.0.1:0"\nrole = "smtps"\n`,
  });
  const header = "From: Alice <alice@local.test>\r\nTo: bob@remote.example\r\n" +
    "Bcc: secret1@remote.example\r\n" +
    "BCC:secret2@remote.example,\r\n\tsecret3@remote.example\r\n" +
    "bcc :   secret4@remote.example\r\n" +
    "Resent-Bcc: secret5@remote.example\r\n" +
    "RESENT-BCC: <secret6@remote.example>,\r\n  secret7@remote.example\r\n" +
    "Return-Path: <secret8@remote.example>\r\n" +
    "return-path:\r\n <secret9@remote.example>\r\n" +
    "X-Bcc-Note: kept-field\r\nBccx: kept-too\r\nSubject: bcc test\r\n\r\n" +
    "Bcc: in-the-body-is-kept\r\n";
  using c = await SmtpClient.connect(d.portOf("smtps"), { tls: "implicit", caCert: caPem, timeoutMs: 20_000 });
  await c.reply();
  await c.cmd("EHLO client.example");
  assert.equal((await c.authPlain("alice", PASSWORD)).code, 235);
  assert.equal((await c.cmd("MAIL FROM:<alice@local.test>")).code, 250);
  assert.equal((await c.cmd("RCPT TO:<bob@remote.example>")).code, 250);
  assert.equal((await c.cmd("DATA")).code, 354);
  assert.equal((await c.cmd(`${header}.`)).code, 250);
  const submitted = await only(d);
  for (let i = 1; i <= 9; i++) assert.doesNotMatch(submitted, new RegExp(`secret${i}@`), `secret${i} removed`);
  assert.match(submitted, /\r\nTo: bob@remote\.example\r\n/);
  assert.match(submitted, /\r\nX-Bcc-Note: kept-field\r\nBccx: kept-too\r\nSubject: bcc test\r\n/);
  assert.match(submitted, /\r\n\r\nBcc: in-the-body-is-kept\r\n$/);
  assert.match(submitted, /\r\nMessage-ID: </, "submission adds Message-ID");

  await using mx = await daemon();
  assert.equal((await send(mx.port, header)).code, 250);
  const relayed = await only(mx);
  for (let i = 1; i <= 9; i++) assert.match(relayed, new RegExp(`secret${i}@`), `mx keeps secret${i}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a header dripped in 20-byte writes costs about the CPU of the same bytes as body (ratio < 3)", async () => {
  await using d = await daemon();
  const pid = d.child.pid;
  const lines = filler(3150); // 239 KB
  // Warm up (JIT, buffers) so the first measured run is not the slow one.
  assert.equal((await send(d.port, `Subject: warm\r\n\r\n${filler(500)}`, 20)).code, 250);
  const measure = async (data: string) => {
    const before = await cpuTicks(pid);
    const r = await send(d.port, data, 20);
    assert.equal(r.code, 250, r.text);
    return await cpuTicks(pid) - before;
  };
  const asHeader = await measure(`${lines}Subject: dripped header\r\n\r\nbody\r\n`);
  const asBody = await measure(`Subject: dripped body\r\n\r\n${lines}`);
  const ratio = asHeader / Math.max(asBody, 1);
  console.log(`daemon CPU: header ${asHeader} ticks, body ${asBody} ticks, ratio ${ratio.toFixed(2)}`);
  assert.ok(ratio < 3, `dripped header cost ${ratio.toFixed(2)}x the body (${asHeader} vs ${asBody} ticks)`);
});
