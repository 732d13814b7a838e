/**
 * End to end: the real daemon accepts mail from real clients (swaks, Python's smtplib,
 * raw sockets) and the message is on disk and in the queue store, surviving restarts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openFileStore, openKvStore, type QueueStore } from "../../src/queue/mod.ts";
import { restartDaemon, startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { sendMessage, SmtpClient } from "../../testing/smtp_client.ts";
import { spooledIds, spooledMessages } from "../../testing/spool_reader.ts";

const PYTHON = "/usr/bin/python3";

async function run(cmd: string, args: string[], stdin?: string) {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: stdin ? "piped" : "null" })
    .spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  return { code: out.code, out: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

function openStore(d: TestDaemon, backend: "kv" | "file"): Promise<QueueStore> {
  return backend === "kv" ? openKvStore(join(d.dataDir, "queue.kv")) : openFileStore(join(d.dataDir, "queue"));
}

async function spoolIds(d: TestDaemon): Promise<string[]> {
  return await spooledIds(d.dataDir);
}

for (const backend of ["kv", "file"] as const) {
  Deno.test(`accepts mail from swaks and smtplib; it is spooled, queued and survives a restart (${backend})`, async () => {
    let d = await startDaemon({ toml: `[queue]\nbackend = "${backend}"\n` });
    try {
      const swaks = await run("swaks", [
        "--server",
        `127.0.0.1:${d.port}`,
        "--from",
        "alice@example.com",
        "--to",
        "bob@example.net",
        "--header",
        "Subject: swaks test",
        "--body",
        "hello from swaks",
      ]);
      assert.equal(swaks.code, 0, swaks.out);
      const swaksId = /queued as ([0-9A-Z]{26})/.exec(swaks.out)?.[1];
      assert.ok(swaksId, swaks.out);

      const py = await run(PYTHON, [
        "-c",
        `import smtplib,sys
s = smtplib.SMTP("127.0.0.1", ${d.port})
code, msg = s.ehlo("py.test")
s.sendmail("carol@example.com", ["dave@example.org", "erin@example.org"], "Subject: py\\r\\n\\r\\nhello from python\\r\\n")
print(s.noop())
s.quit()`,
      ]);
      assert.equal(py.code, 0, py.out);

      const ids = await spoolIds(d);
      assert.equal(ids.length, 2);
      assert.ok(ids.includes(swaksId));
      const data = (await spooledMessages(d.dataDir)).get(swaksId)!;
      assert.match(data, /^Received: from \S+ \(\[127\.0\.0\.1\]\)\r\n\tby \S+ \(Empath\) with ESMTP id /);
      assert.match(data, /Subject: swaks test/);
      assert.match(data, /hello from swaks/);

      assert.equal(await d.stop(), 0);
      let store = await openStore(d, backend);
      const rec = await store.get(swaksId);
      assert.ok(rec);
      assert.equal(rec.status, "queued");
      assert.equal(rec.sender, "alice@example.com");
      assert.deepEqual(rec.recipients.map((r) => [r.address, r.status]), [["bob@example.net", "pending"]]);
      assert.equal(rec.size, data.length);
      assert.equal((await store.counts()).queued, 2);
      await store.close();

      d = await restartDaemon(d);
      assert.match(await d.waitForLog(/queue recovered/), /"total":2/);
      assert.equal(await d.stop(), 0);
      store = await openStore(d, backend);
      assert.equal((await store.counts()).queued, 2);
      await store.close();
    } finally {
      await d.kill();
      await d.cleanup();
    }
  });
}

Deno.test("stores DSN parameters (RET, ENVID, NOTIFY, ORCPT) with the message", async () => {
  const d = await startDaemon();
  try {
    const c = await SmtpClient.connect(d.port);
    await c.reply();
    const ehlo = await c.cmd("EHLO dsn.test");
    for (const ext of ["PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 25000000", "ENHANCEDSTATUSCODES", "DSN"]) {
      assert.ok(ehlo.lines.some((l) => l.slice(4) === ext), `missing ${ext} in ${ehlo.text}`);
    }
    assert.equal((await c.cmd("MAIL FROM:<a@example.com> RET=HDRS ENVID=QQ314159")).code, 250);
    assert.equal((await c.cmd("RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.net")).code, 250);
    assert.equal((await c.cmd("RCPT TO:<c@example.net> NOTIFY=NEVER")).code, 250);
    assert.equal((await c.cmd("DATA")).code, 354);
    const final = await c.cmd("Subject: dsn\r\n\r\nbody\r\n.");
    assert.equal(final.code, 250);
    const id = /queued as (\S+)/.exec(final.text)![1]!;
    await c.cmd("QUIT");
    c.close();
    await d.stop();
    const store = await openKvStore(join(d.dataDir, "queue.kv"));
    const rec = (await store.get(id))!;
    await store.close();
    assert.deepEqual(rec.dsn, { ret: "HDRS", envid: "QQ314159" });
    assert.deepEqual(rec.recipients[0]?.notify, ["SUCCESS", "FAILURE"]);
    assert.equal(rec.recipients[0]?.orcpt, "rfc822;b@example.net");
    assert.deepEqual(rec.recipients[1]?.notify, ["NEVER"]);
  } finally {
    await d.kill();
    await d.cleanup();
  }
});

Deno.test("denies relaying to a remote domain with 554 5.7.1 and accepts local domains", async () => {
  await using d = await startDaemon({ toml: `[relay]\nlocal_domains = ["local.test"]\nrelay_networks = []\n` });
  const c = await SmtpClient.connect(d.port);
  await c.reply();
  await c.cmd("EHLO x.test");
  await c.cmd("MAIL FROM:<a@remote.test>");
  const denied = await c.cmd("RCPT TO:<b@elsewhere.test>");
  assert.equal(denied.code, 554);
  assert.match(denied.text, /^554 5\.7\.1 Relaying denied/);
  for (const trick of ["<b%elsewhere.test@local.test>", "<@local.test:b@elsewhere.test>", "<b!x@local.test>"]) {
    const r = await c.cmd(`RCPT TO:${trick}`);
    assert.ok(r.code >= 500, `${trick}: ${r.text}`);
  }
  assert.equal((await c.cmd("RCPT TO:<b@LOCAL.test>")).code, 250);
  c.close();
});

Deno.test("enforces the size limit at MAIL FROM SIZE= and in DATA with 552", async () => {
  await using d = await startDaemon({ toml: `[smtp]\nmax_message_size = "10KB"\n` });
  const c = await SmtpClient.connect(d.port);
  await c.reply();
  assert.ok((await c.cmd("EHLO x.test")).lines.some((l) => l.includes("SIZE 10000")));
  const big = await c.cmd("MAIL FROM:<a@example.com> SIZE=20000");
  assert.equal(big.code, 552);
  c.close();
  const r = await sendMessage(
    d.port,
    "a@example.com",
    ["b@example.net"],
    "Subject: big\r\n\r\n" + "x".repeat(70) + "\r\n".repeat(1) + ("y".repeat(98) + "\r\n").repeat(150),
  );
  assert.equal(r.code, 552, r.text);
  assert.deepEqual(await spoolIds(d), []);
});

Deno.test("a client that vanishes mid-DATA leaves no spooled message or queue record", async () => {
  await using d = await startDaemon();
  const c = await SmtpClient.connect(d.port);
  await c.reply();
  await c.cmd("EHLO x.test");
  await c.cmd("MAIL FROM:<a@example.com>");
  await c.cmd("RCPT TO:<b@example.net>");
  await c.cmd("DATA");
  await c.send("Subject: half\r\n\r\n" + "partial line\r\n".repeat(1000));
  c.close();
  await d.waitForLog(/not accepted: .*4\.4\.2 Connection lost during DATA/);
  assert.deepEqual(await spoolIds(d), []);
  assert.deepEqual(await Array.fromAsync(Deno.readDir(join(d.dataDir, "spool", "tmp"))), []);
  // The daemon keeps working.
  assert.equal((await sendMessage(d.port, "a@example.com", ["b@example.net"], "Subject: ok\r\n\r\nok")).code, 250);
});

Deno.test("NUL bytes, over-long lines, invalid UTF-8 headers and mail loops get clear 5xx replies", async () => {
  await using d = await startDaemon();
  const cases: [string, RegExp][] = [
    ["Subject: nul\r\n\r\nbad\0byte\r\n", /^554 5\.6\.0 .*NUL/],
    ["Subject: long\r\n\r\n" + "x".repeat(1200) + "\r\n", /^554 5\.6\.0 .*longer than 1000/],
    ["Subject: \xff\xfe bad\r\n\r\nbody\r\n", /^554 5\.6\.7 .*UTF-8/],
    ["Received: from a\r\n".repeat(60) + "Subject: loop\r\n\r\nbody\r\n", /^554 5\.4\.6 Too many hops/],
  ];
  for (const [data, re] of cases) {
    const c = await SmtpClient.connect(d.port);
    await c.reply();
    await c.cmd("EHLO x.test");
    await c.cmd("MAIL FROM:<a@example.com>");
    await c.cmd("RCPT TO:<b@example.net>");
    await c.cmd("DATA");
    await c.send(Uint8Array.from([...data].map((ch) => ch.charCodeAt(0))));
    const r = await c.cmd(".");
    assert.match(r.text, re);
    // The session is still usable after a rejected message.
    assert.equal((await c.cmd("NOOP")).code, 250);
    c.close();
  }
  assert.deepEqual(await spoolIds(d), []);
});

Deno.test("too many errors in one session end it with 421", async () => {
  await using d = await startDaemon({ toml: `[smtp]\nmax_errors = 3\n` });
  const c = await SmtpClient.connect(d.port);
  await c.reply();
  await c.cmd("EHLO x.test");
  assert.equal((await c.cmd("RCPT TO:<b@example.net>")).code, 503);
  assert.equal((await c.cmd("BOGUS")).code, 500);
  await c.send("BOGUS\r\n");
  const r = await c.reply();
  assert.equal(r.code, 500);
  const bye = await c.reply();
  assert.match(bye.text, /^421 4\.7\.0 Too many errors/);
  assert.ok(await c.closedByServer());
  c.close();
});

Deno.test("more connections from one address than allowed get 421", async () => {
  await using d = await startDaemon({ toml: `[smtp]\nmax_connections_per_ip = 2\n` });
  const conns: SmtpClient[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = await SmtpClient.connect(d.port);
      assert.equal((await c.reply()).code, 220);
      conns.push(c);
    }
    const third = await SmtpClient.connect(d.port);
    conns.push(third);
    assert.match((await third.reply()).text, /^421 4\.7\.0 Too many connections/);
    conns[0]?.close();
    await new Promise((r) => setTimeout(r, 200));
    const again = await SmtpClient.connect(d.port);
    conns.push(again);
    assert.equal((await again.reply()).code, 220);
  } finally {
    conns.forEach((c) => c.close());
  }
});

Deno.test("SIGTERM lets a session in DATA finish and its message is kept", async () => {
  const d = await startDaemon();
  try {
    const idle = await SmtpClient.connect(d.port);
    await idle.reply();
    const c = await SmtpClient.connect(d.port);
    await c.reply();
    await c.cmd("EHLO x.test");
    await c.cmd("MAIL FROM:<a@example.com>");
    await c.cmd("RCPT TO:<b@example.net>");
    await c.cmd("DATA");
    await c.send("Subject: slow\r\n\r\nfirst half\r\n");
    d.child.kill("SIGTERM");
    await d.waitForLog(/shutting down/);
    assert.match((await idle.reply()).text, /^421 4\.3\.2/);
    await c.send("second half\r\n.\r\n");
    const r = await c.reply();
    assert.equal(r.code, 250, r.text);
    assert.equal(await d.stop(), 0);
    assert.equal((await spoolIds(d)).length, 1);
    idle.close();
    c.close();
  } finally {
    await d.kill();
    await d.cleanup();
  }
});
