/**
 * Modules end to end: the real daemon with modules that veto each SMTP stage
 * (checking the exact reply the client sees), metadata that travels from MAIL FROM
 * to deliverySuccess across a restart, modules that throw or hang, built-ins, the
 * README example, and the C example module built with cc.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openFileStore, openKvStore, type QueueRecord } from "../../src/queue/mod.ts";
import { openSpool } from "../../src/spool/mod.ts";
import { hashPassword } from "../../src/smtp/mod.ts";
import { restartDaemon, startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import { startScriptSink } from "../helpers/script_sink.ts";
import { selfSignedCertificate } from "../helpers/self_signed.ts";
import { type Reply, sendMessage, SmtpClient } from "../../testing/smtp_client.ts";
import { tempDir, tempFile } from "../../testing/temp.ts";
import { eventually } from "../../testing/poll.ts";
import { buildNative, findCc } from "../modules/native_build.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const FIXTURES = join(REPO, "tests/modules/fixtures");
const idOf = (r: Reply) => /queued as (\S+)/.exec(r.text)?.[1] ?? assert.fail(r.text);

async function readRecord(d: TestDaemon, id: string, backend: "kv" | "file" = "kv"): Promise<QueueRecord> {
  const store = backend === "kv"
    ? await openKvStore(join(d.dataDir, "queue.kv"))
    : await openFileStore(join(d.dataDir, "queue"));
  try {
    return (await store.get(id)) ?? assert.fail(`no record ${id}`);
  } finally {
    await store.close();
  }
}

async function spoolFiles(d: TestDaemon): Promise<string[]> {
  const dir = join(d.dataDir, "spool", "data");
  const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  return await Promise.all(names.map((n) => Deno.readTextFile(join(dir, n))));
}

/** A message's stored data, whatever the spool layout (read after the daemon stopped). */
async function storedMessage(d: TestDaemon, id: string): Promise<string> {
  const spool = await openSpool(join(d.dataDir, "spool"), { fsync: false });
  return new TextDecoder().decode(await spool.readAll(id));
}

async function swaks(args: string[]) {
  const out = await new Deno.Command("swaks", { args, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

/** JSON lines written by the recorder fixture. */
async function recorded(path: string): Promise<{ hook: string; [k: string]: unknown }[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

const waitFor = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000) =>
  eventually(fn, what, timeoutMs, 50);

Deno.test("modules veto each SMTP stage and the client sees the module's exact reply", async (t) => {
  await using dir = await tempDir("empath-modules-");
  const { cert, key } = await selfSignedCertificate(dir.path);
  await Deno.writeTextFile(join(dir.path, "users"), `alice:${await hashPassword("s3cret pass")}\n`);
  await using d = await startDaemon({
    toml: `[tls]\ncert = "${cert}"\nkey = "${key}"\n[auth]\nusers_file = "${join(dir.path, "users")}"\n` +
      `[[listeners]]\nname = "closed"\naddress = "127.0.0.1:0"\n` +
      `[[listeners]]\nname = "submission"\naddress = "127.0.0.1:0"\nrole = "submission"\n` +
      `[[modules]]\npath = "${FIXTURES}/veto.ts"\n`,
  });
  const session = async () => {
    const c = await SmtpClient.connect(d.portOf("mx"));
    assert.equal((await c.reply()).code, 220);
    return c;
  };
  await t.step("connect: 554 and the connection is closed", async () => {
    const c = await SmtpClient.connect(d.portOf("closed"));
    assert.equal((await c.reply()).text, "554 5.7.1 No SMTP for you here");
    assert.ok(await c.closedByServer());
    c.close();
  });

  await t.step("EHLO and HELO: 550, and the session can try again", async () => {
    const c = await session();
    assert.equal((await c.cmd("EHLO reject.ehlo.test")).text, "550 5.7.1 Your HELO name is not welcome");
    assert.equal((await c.cmd("HELO reject.ehlo.test")).text, "550 5.7.1 Your HELO name is not welcome");
    assert.equal((await c.cmd("EHLO client.test")).code, 250);
    c.close();
  });

  await t.step("STARTTLS: the module's 454 before any handshake; the session goes on in clear", async () => {
    const c = await session();
    assert.ok((await c.cmd("EHLO no-tls.test")).lines.some((l) => l.includes("STARTTLS")));
    assert.equal((await c.cmd("STARTTLS")).text, "454 4.7.0 TLS is not available to you right now");
    assert.equal((await c.cmd("NOOP")).code, 250);
    c.close();
  });

  await t.step("MAIL FROM: 553 reject and 451 defer", async () => {
    const c = await session();
    await c.cmd("EHLO client.test");
    assert.equal((await c.cmd("MAIL FROM:<reject-mail@x.test>")).text, "553 5.7.1 Sender refused by policy");
    assert.equal((await c.cmd("MAIL FROM:<defer-mail@x.test>")).text, "451 4.7.1 Sender checks are unavailable");
    assert.equal((await c.cmd("MAIL FROM:<ok@x.test>")).code, 250);
    c.close();
  });

  await t.step("RCPT TO: 550 5.1.1 and 450 4.2.1; other recipients still accepted", async () => {
    const c = await session();
    await c.cmd("EHLO client.test");
    await c.cmd("MAIL FROM:<ok@x.test>");
    assert.equal((await c.cmd("RCPT TO:<reject-rcpt@localhost>")).text, "550 5.1.1 No such user here");
    assert.equal((await c.cmd("RCPT TO:<defer-rcpt@localhost>")).text, "450 4.2.1 Mailbox busy");
    assert.equal((await c.cmd("RCPT TO:<bob@localhost>")).code, 250);
    c.close();
  });

  await t.step("DATA: 554 on a header, 451 on the streamed body; nothing is queued", async () => {
    const header = await sendMessage(d.port, "ok@x.test", ["bob@localhost"], "Subject: reject me\r\n\r\nhi\r\n");
    assert.equal(header.text, "554 5.7.1 Message content rejected");
    const body = await sendMessage(d.port, "ok@x.test", ["bob@localhost"], "Subject: x\r\n\r\nDEFER-BODY\r\n");
    assert.equal(body.text, "451 4.7.1 Content scanner busy, try later");
    assert.deepEqual(await spoolFiles(d), []);
    const ok = await sendMessage(d.port, "ok@x.test", ["bob@localhost"], "Subject: fine\r\n\r\nhi\r\n");
    assert.equal(ok.code, 250, ok.text);
    assert.equal((await spoolFiles(d)).length, 1);
  });

  await t.step("AUTH: valid credentials refused by the module get its 535 5.7.8", async () => {
    const args = [
      "--server",
      `127.0.0.1:${d.portOf("submission")}`,
      "--tls",
      "--auth",
      "PLAIN",
      "--auth-user",
      "alice",
    ];
    const refused = await swaks([
      ...args,
      "--auth-password",
      "s3cret pass",
      "--ehlo",
      "no-auth.test",
      "--quit-after",
      "AUTH",
    ]);
    assert.match(refused.text, /535 5\.7\.8 Alice may not log in from here/, refused.text);
    const allowed = await swaks([
      ...args,
      "--auth-password",
      "s3cret pass",
      "--ehlo",
      "ok.test",
      "--quit-after",
      "AUTH",
    ]);
    assert.match(allowed.text, /235 /, allowed.text);
  });
});

for (const backend of ["kv", "file"] as const) {
  Deno.test(`metadata set at MAIL FROM is stored and read in deliverySuccess after a restart (${backend})`, async () => {
    await using recorderOut = await tempFile("empath-recorder-");
    const out = recorderOut.path;
    await using sink = await startScriptSink({
      script: { rcpt_once: { "bob@mod.test": "451 4.2.0 try again later" } },
    });
    await using dns = await startDnsServer({
      mx: [["dns.test", "mx.dns.test", 10]],
      a: [["mx.dns.test", "127.0.0.1"]],
    });
    await using d = await startDaemon({
      toml: `[queue]\nbackend = "${backend}"\n` +
        `[[modules]]\npath = "${FIXTURES}/recorder.ts"\noptions = { out = "${out}", tag = "vip" }\n`,
    });
    const c = await SmtpClient.connect(d.port);
    await c.reply();
    await c.cmd("EHLO client.test");
    assert.equal((await c.cmd("BOGUS")).code, 500);
    await c.cmd("MAIL FROM:<alice@example.com>");
    await c.cmd("RCPT TO:<bob@mod.test>");
    await c.cmd("RCPT TO:<carol@dns.test>");
    await c.cmd("DATA");
    await c.send("Subject: meta\r\n\r\nhello\r\n");
    const id = idOf(await c.cmd("."));
    await c.cmd("QUIT");
    c.close();
    await waitFor("connectionClosed", async () => (await recorded(out)).find((l) => l.hook === "connectionClosed"));
    assert.equal(await d.stop(), 0);

    const hooks = (await recorded(out)).map((l) => l.hook);
    for (const h of ["connectionOpened", "connect", "smtpError", "mailFrom", "rcptTo", "data", "messageReceived"]) {
      assert.ok(hooks.includes(h), `${h} in ${hooks}`);
    }
    const order = ["mailFrom", "rcptTo", "data", "messageReceived", "connectionClosed"].map((h) => hooks.indexOf(h));
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `events in session order: ${hooks}`);
    const received = (await recorded(out)).find((l) => l.hook === "messageReceived");
    assert.deepEqual(received?.envelope, {
      sender: "alice@example.com",
      recipients: ["bob@mod.test", "carol@dns.test"],
    });
    assert.equal(received?.messageId, id);
    const smtpError = (await recorded(out)).find((l) => l.hook === "smtpError");
    assert.equal((smtpError?.args as { code: number }).code, 500);

    const record = await readRecord(d, id, backend);
    assert.deepEqual(record.metadata, {
      recorder: { peer: "127.0.0.1", tag: "vip:alice@example.com", subject: "meta", bodyBytes: 7 },
    });
    const data = await storedMessage(d, id);
    assert.match(
      data,
      /^Received: [^]*?\r\nX-Recorder-Data: added in data\r\nX-Recorder: rcpt bob@mod\.test\r\nX-Recorder: rcpt carol@dns\.test\r\nSubject: meta\r\n/,
    );
    assert.equal(record.size, new TextEncoder().encode(data).length, "the size counts the added fields");

    // Hours later: the daemon restarts with delivery on.
    const toml = await Deno.readTextFile(d.configPath);
    await Deno.writeTextFile(
      d.configPath,
      toml.replace(
        "\n[delivery]\nenabled = false\n",
        `\n[delivery]\nport = ${sink.port}\n[delivery.dns]\nnameserver = "127.0.0.1:${dns.port}"\n` +
          `[delivery.retry]\nbase_delay = "1s"\njitter = 0\n` +
          `[delivery.domains."mod.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
      ),
    );
    await Deno.writeTextFile(out, "");
    // The restarted daemon is disposed first (stop, then its dir is removed); disposing `d` after it is a no-op.
    await using _restarted = await restartDaemon(d);
    const success = await waitFor(
      "deliverySuccess for bob",
      async () =>
        (await recorded(out)).find((l) =>
          l.hook === "deliverySuccess" && (l.args as { recipients: string[] }).recipients.includes("bob@mod.test")
        ),
    );
    assert.equal(success.messageId, id);
    assert.deepEqual(success.metadata, {
      peer: "127.0.0.1",
      tag: "vip:alice@example.com",
      subject: "meta",
      bodyBytes: 7,
      failures: 1, // counted in deliveryFailure for the 451, stored, and read again at the retry
    });
    assert.deepEqual((success.session as { remote: { address: string } }).remote.address, "127.0.0.1");
    const lines = await recorded(out);
    const failure = lines.find((l) => l.hook === "deliveryFailure");
    assert.deepEqual(failure?.args, {
      recipients: ["bob@mod.test"],
      permanent: false,
      reason: "451 4.2.0 try again later",
      server: `127.0.0.1:${sink.port}`,
    });
    assert.ok(lines.some((l) => l.hook === "deliveryAttempt"));
    assert.ok(
      lines.some((l) => l.hook === "dnsLookup" && (l.args as { name: string }).name === "dns.test"),
      "the MX lookup for dns.test was reported",
    );
    const delivered = await sink.waitFor(2);
    assert.ok(delivered.every((m) => m.data.includes("X-Recorder-Data: added in data")));
  });
}

Deno.test("a module that throws or hangs is logged and handled per on_error; the daemon keeps serving", async () => {
  await using faultyOut = await tempFile("empath-faulty-");
  const out = faultyOut.path;
  await using d = await startDaemon({
    toml: `[[modules]]\nname = "strict"\npath = "${FIXTURES}/faulty.ts"\ntimeout = "500ms"\n` +
      `options = { prefix = "strict-", out = "${out}", hang = ["connectionClosed"] }\n` +
      `[[modules]]\nname = "lenient"\npath = "${FIXTURES}/faulty.ts"\ntimeout = "500ms"\non_error = "accept"\n` +
      `options = { prefix = "lenient-", throw = ["messageReceived"] }\n`,
  });
  const c = await SmtpClient.connect(d.port);
  await c.reply();
  await c.cmd("EHLO client.test");
  let t0 = Date.now();
  assert.equal(
    (await c.cmd("MAIL FROM:<strict-hang@x.test>")).text,
    "451 4.3.0 Temporary local problem, try again later",
  );
  assert.ok(Date.now() - t0 >= 450, "waited for the time budget");
  assert.equal(
    (await c.cmd("MAIL FROM:<strict-throw@x.test>")).text,
    "451 4.3.0 Temporary local problem, try again later",
  );
  assert.equal((await c.cmd("MAIL FROM:<lenient-throw@x.test>")).code, 250, "on_error = accept");
  t0 = Date.now();
  assert.equal((await c.cmd("RCPT TO:<lenient-hang@localhost>")).code, 250);
  assert.ok(Date.now() - t0 >= 450);
  assert.equal(
    (await c.cmd("RCPT TO:<strict-throw@localhost>")).text,
    "451 4.3.0 Temporary local problem, try again later",
  );
  assert.equal((await c.cmd("DATA")).code, 354);
  await c.send("Subject: strict-throw\r\n\r\nbody\r\n");
  assert.equal((await c.cmd(".")).text, "451 4.3.0 Temporary local problem, try again later");
  assert.deepEqual(await spoolFiles(d), [], "a refused message leaves no data");
  await c.cmd("MAIL FROM:<a@x.test>");
  await c.cmd("RCPT TO:<b@localhost>");
  await c.cmd("DATA");
  await c.send("Subject: fine\r\n\r\nbody\r\n");
  assert.equal((await c.cmd(".")).code, 250, "a throwing event hook does not block mail");
  c.close();

  await d.waitForLog(/"module":"strict","hook":"mailFrom","code":"MODULE_TIMEOUT"/);
  await d.waitForLog(/"module":"strict","hook":"mailFrom","code":"MODULE_THREW","error":"deliberate failure/);
  await d.waitForLog(/"module":"lenient","hook":"messageReceived","code":"MODULE_THREW"/);
  await d.waitForLog(/"module":"strict","hook":"connectionClosed","code":"MODULE_TIMEOUT"/);
  assert.match(await Deno.readTextFile(out), /aborted mailFrom/);
  const again = await sendMessage(d.port, "a@x.test", ["b@localhost"], "Subject: still up\r\n\r\nx\r\n");
  assert.equal(again.code, 250);
  assert.equal(await d.stop(), 0);
});

Deno.test("built-in modules: deny and allow lists, per-sender rate limit, added header fields", async () => {
  await using d = await startDaemon({
    toml: `[[modules]]\nbuiltin = "denylist"\noptions = { senders = ["@spam.test"] }\n` +
      `[[modules]]\nbuiltin = "allowlist"\noptions = { recipients = ["@localhost", "postmaster@"] }\n` +
      `[[modules]]\nbuiltin = "rate_limit"\noptions = { max_recipients = 2 }\n` +
      `[[modules]]\nbuiltin = "add_header"\noptions = { headers = { "X-Checked-By" = "empath {listener} for {peer}" } }\n`,
  });
  const c = await SmtpClient.connect(d.port);
  await c.reply();
  await c.cmd("EHLO client.test");
  assert.equal((await c.cmd("MAIL FROM:<x@spam.test>")).text, "550 5.7.1 Sender <x@spam.test> is blocked");
  assert.equal((await c.cmd("MAIL FROM:<a@ok.test>")).code, 250);
  assert.equal(
    (await c.cmd("RCPT TO:<b@elsewhere.test>")).text,
    "550 5.7.1 Recipient <b@elsewhere.test> is not allowed here",
  );
  assert.equal((await c.cmd("RCPT TO:<b@localhost>")).code, 250);
  assert.equal((await c.cmd("RCPT TO:<postmaster@other.test>")).code, 250);
  assert.equal(
    (await c.cmd("RCPT TO:<c@localhost>")).text,
    "451 4.7.1 Too many recipients from <a@ok.test>, try again later",
  );
  await c.cmd("DATA");
  await c.send("Subject: builtins\r\n\r\nx\r\n");
  const id = idOf(await c.cmd("."));
  c.close();
  await d.stop();
  assert.match(
    await storedMessage(d, id),
    /^Received: [^]*?\r\nX-Checked-By: empath mx for 127\.0\.0\.1\r\nSubject: builtins\r\n/,
  );
});

Deno.test("the README example module works as documented", async () => {
  await using d = await startDaemon({
    toml: `[[modules]]\npath = "${REPO}modules/example.ts"\n` +
      `options = { vip_domains = ["vip.test"], blocked_domains = ["blocked.test"] }\n`,
  });
  const refused = await sendMessage(d.port, "a@vip.test", ["x@blocked.test"], "Subject: s\r\n\r\nx\r\n");
  assert.equal(refused.text, "550 5.7.1 We do not accept mail for blocked.test");
  const noSubject = await sendMessage(d.port, "a@vip.test", ["x@localhost"], "From: a@vip.test\r\n\r\nx\r\n");
  assert.equal(noSubject.text, "550 5.6.0 A Subject header is required here");
  const ok = await sendMessage(d.port, "a@VIP.test", ["x@localhost"], "Subject: s\r\n\r\nline 1\r\nline 2\r\n");
  assert.equal(ok.code, 250, ok.text);
  await d.stop();
  const record = await readRecord(d, idOf(ok));
  assert.deepEqual(record.metadata, { example: { vip: true, bodyLines: 2 } });
  assert.match(await storedMessage(d, idOf(ok)), /\r\nX-VIP: yes\r\n/);
});

Deno.test({
  name: "the C example module (built with cc) refuses recipients and content and stores metadata over SMTP",
  ignore: !findCc(),
  async fn() {
    await using dir = await tempDir("empath-native-e2e-");
    const lib = await buildNative("native/example/example_module.c", dir.path, "example");
    const faulty = await buildNative("tests/modules/fixtures/native_faulty.c", dir.path, "faulty");
    await using d = await startDaemon({
      toml: `[[modules]]\nname = "cmod"\npath = "${lib}"\nnative = true\noptions = { deny_domain = "blocked.test" }\n` +
        `[[modules]]\npath = "${faulty}"\nnative = true\ntimeout = "300ms"\n`,
      permissions: ["--allow-ffi"],
    });
    const c = await SmtpClient.connect(d.port);
    await c.reply();
    assert.equal((await c.cmd("EHLO error.test")).text, "451 4.3.0 Temporary local problem, try again later");
    assert.equal((await c.cmd("EHLO sleep.test")).text, "451 4.3.0 Temporary local problem, try again later");
    assert.equal((await c.cmd("EHLO client.test")).code, 250);
    await c.cmd("MAIL FROM:<alice@x.test>");
    assert.equal(
      (await c.cmd("RCPT TO:<bob@blocked.test>")).text,
      "550 5.7.1 Mail for blocked.test is refused by a native module",
    );
    assert.equal((await c.cmd("RCPT TO:<bob@localhost>")).code, 250);
    await c.cmd("DATA");
    await c.send("Subject: c\r\n\r\nNATIVE-REJECT\r\n");
    assert.equal((await c.cmd(".")).text, "554 5.7.1 Message refused by the native content check");
    c.close();
    const ok = await sendMessage(d.port, "alice@x.test", ["bob@localhost"], "Subject: c\r\n\r\nclean\r\n");
    assert.equal(ok.code, 250, ok.text);
    await d.stop();
    const record = await readRecord(d, idOf(ok));
    assert.equal((record.metadata.cmod as Record<string, unknown>).native_sender, "alice@x.test");
    assert.ok(Number((record.metadata.cmod as Record<string, unknown>).lines) >= 4);
  },
});

Deno.test("a native module without --allow-ffi is a configuration error (exit 78)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-noffi-" });
  try {
    const config = join(dir, "config.toml");
    await Deno.writeTextFile(
      config,
      `data_dir = "${dir}/var"\n[[listeners]]\naddress = "127.0.0.1:0"\n[http]\nenabled = false\n[control]\nenabled = false\n` +
        `[[modules]]\npath = "./libexample.so"\nnative = true\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-sys",
        `${REPO}main.ts`,
        "--config",
        config,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 78, stderr);
    assert.match(
      stderr,
      /modules\[0\]\.native = true: native modules need the FFI permission: start Empath with --allow-ffi/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
