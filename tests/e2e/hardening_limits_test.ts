/**
 * Hardening (#13), class 4: resource limits, against a live daemon.
 *
 * - 32 (and 40) concurrent failed AUTHs on a submission listener keep the daemon's RSS under
 *   250 MB during and after: scrypt runs at most 2 at a time, in-flight checks count against
 *   the per-address lockout (10 by default: exactly 10 × 535, the rest 454 4.7.0 at once),
 *   and with the lockout off the excess waits or gets 454 4.7.0.
 * - A TLS handshake that stalls or drips (after STARTTLS, or on an smtps listener) is cut at
 *   `smtp.timeouts.handshake` (2 s here), not at the 5-minute command timeout; a completed
 *   handshake is not cut.
 * - Outbound: a next hop that answers 220 to STARTTLS and then stalls is given up after
 *   `delivery.timeouts.tls_handshake` (2 s here); with tls = "opportunistic" the message is then
 *   delivered in clear text on a new connection, with tls = "required" it is deferred.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hashPassword } from "../../src/smtp/mod.ts";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";
import { certificateChain } from "../helpers/certificate_chain.ts";
import { eventually, rssMb, smtpScript, startFakeSmtp } from "../helpers/hardening.ts";

const PASSWORD = "limits pass";
const RSS_LIMIT_MB = 250;

interface Tls {
  dir: string;
  cert: string;
  key: string;
  caPem: string;
}

async function tlsFiles(): Promise<Tls> {
  const dir = await Deno.makeTempDir({ prefix: "empath-limits-" });
  return { dir, ...await certificateChain(dir) };
}

async function inboundDaemon(tls: Tls, smtp: string): Promise<TestDaemon> {
  await Deno.writeTextFile(join(tls.dir, "users"), `alice:${await hashPassword(PASSWORD)}\n`);
  return await startDaemon({
    logLevel: "info",
    toml: `[tls]\ncert = "${tls.cert}"\nkey = "${tls.key}"\n[auth]\nusers_file = "${join(tls.dir, "users")}"\n` +
      `[relay]\nlocal_domains = ["local.test"]\nrelay_networks = []\nreject_unknown_sender_domain = false\n` +
      `[recipients]\nunknown = "accept"\n[smtp]\nmax_errors = 1000\nmax_connections_per_ip = 500\n${smtp}` +
      `[[listeners]]\nname = "submission"\naddress = "127.0.0.1:0"\nrole = "submission"\n` +
      `[[listeners]]\nname = "smtps"\naddress = "127.0.0.1:0"\nrole = "smtps"\n`,
  });
}

/** `n` sessions on the submission listener, each STARTTLS and one AUTH with a bad password, at once. */
async function concurrentBadAuth(d: TestDaemon, tls: Tls, n: number): Promise<{ codes: number[]; maxRss: number }> {
  const pid = d.child.pid;
  const clients = await Promise.all(Array.from({ length: n }, async () => {
    const c = await SmtpClient.connect(d.portOf("submission"), { caCert: tls.caPem, timeoutMs: 120_000 });
    await c.reply();
    await c.cmd("EHLO client.example");
    await c.startTls();
    await c.cmd("EHLO client.example");
    return c;
  }));
  let maxRss = await rssMb(pid);
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxRss = Math.max(maxRss, await rssMb(pid));
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  try {
    const replies = await Promise.all(clients.map((c, i) => c.authPlain("alice", `wrong password ${i}`)));
    return { codes: replies.map((r) => r.code), maxRss };
  } finally {
    sampling = false;
    await sampler;
    clients.forEach((c) => c.close());
  }
}

Deno.test("32 concurrent failed AUTHs: exactly ip_max_failures are hashed (535), the rest get 454 4.7.0, RSS stays under 250 MB", async () => {
  const tls = await tlsFiles();
  await using d = await inboundDaemon(tls, `[smtp.auth]\nfailure_delay = "0s"\n`);
  const { codes, maxRss } = await concurrentBadAuth(d, tls, 32);
  console.log(`RSS peak ${maxRss.toFixed(0)} MB; replies ${JSON.stringify(codes)}`);
  assert.equal(codes.filter((c) => c === 535).length, 10, JSON.stringify(codes));
  assert.equal(codes.filter((c) => c === 454).length, 22, JSON.stringify(codes));
  assert.ok(maxRss < RSS_LIMIT_MB, `RSS peaked at ${maxRss.toFixed(0)} MB`);
  await new Promise((r) => setTimeout(r, 1000));
  const after = await rssMb(d.child.pid);
  assert.ok(after < RSS_LIMIT_MB, `RSS after: ${after.toFixed(0)} MB`);
  await Deno.remove(tls.dir, { recursive: true });
});

Deno.test("40 concurrent failed AUTHs with the lockout off: hashing is bounded (535 or 454 4.7.0), RSS under 250 MB", async () => {
  const tls = await tlsFiles();
  await using d = await inboundDaemon(tls, `[smtp.auth]\nfailure_delay = "0s"\nip_max_failures = 0\n`);
  for (const n of [32, 40]) {
    const { codes, maxRss } = await concurrentBadAuth(d, tls, n);
    console.log(`${n} sessions: RSS peak ${maxRss.toFixed(0)} MB; replies ${JSON.stringify(codes)}`);
    assert.ok(codes.every((c) => c === 535 || c === 454), JSON.stringify(codes));
    assert.ok(codes.filter((c) => c === 535).length >= 2, "the first checks are hashed");
    if (n === 32) assert.ok(codes.every((c) => c === 535), "2 hashing + 30 waiting fit: all are answered 535");
    assert.ok(maxRss < RSS_LIMIT_MB, `RSS peaked at ${maxRss.toFixed(0)} MB`);
  }
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok(await rssMb(d.child.pid) < RSS_LIMIT_MB);
  // The right password still works once the storm is over.
  using c = await SmtpClient.connect(d.portOf("smtps"), { tls: "implicit", caCert: tls.caPem });
  await c.reply();
  await c.cmd("EHLO client.example");
  assert.equal((await c.authPlain("alice", PASSWORD)).code, 235);
  await Deno.remove(tls.dir, { recursive: true });
});

/** Reads from a raw connection until the peer closes it; resolves with performance.now() then. */
async function closedAt(conn: Deno.Conn): Promise<number> {
  const buf = new Uint8Array(4096);
  while (true) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return performance.now();
  }
}

/** Sends one byte a second until the peer is gone or `stop` resolves. */
async function dripBytes(conn: Deno.Conn, bytes: Uint8Array, stop: Promise<unknown>): Promise<void> {
  let done = false;
  void stop.then(() => done = true);
  for (let i = 0; !done; i = (i + 1) % bytes.length) {
    if (await conn.write(bytes.subarray(i, i + 1)).catch(() => -1) < 0) return;
    await Promise.race([new Promise((r) => setTimeout(r, 1000)), stop]);
  }
}

/** A plain connection to `port` that has done EHLO and got 220 to STARTTLS. */
async function afterStartTls(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const dec = new TextDecoder();
  const buf = new Uint8Array(4096);
  let text = "";
  const until = async (re: RegExp) => {
    while (!re.test(text)) {
      const n = await conn.read(buf);
      if (n === null) throw new Error(`closed; got ${text}`);
      text += dec.decode(buf.subarray(0, n));
    }
    text = "";
  };
  await until(/^220 .*\r\n$/m);
  await conn.write(new TextEncoder().encode("EHLO client.example\r\n"));
  await until(/^250 .*\r\n$/m);
  await conn.write(new TextEncoder().encode("STARTTLS\r\n"));
  await until(/^220 .*\r\n$/m);
  return conn;
}

// The start of a TLS ClientHello record, sent a byte at a time.
const CLIENT_HELLO_START = Uint8Array.of(0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03);

Deno.test("a stalled or dripped TLS handshake after STARTTLS or on smtps is cut at smtp.timeouts.handshake", async () => {
  const tls = await tlsFiles();
  await using d = await inboundDaemon(tls, `[smtp.timeouts]\nhandshake = "2s"\n`);
  const cases: [string, () => Promise<Deno.TcpConn>, boolean][] = [
    ["STARTTLS, then silence", () => afterStartTls(d.portOf("submission")), false],
    ["STARTTLS, then a byte a second", () => afterStartTls(d.portOf("submission")), true],
    ["smtps, silence", () => Deno.connect({ hostname: "127.0.0.1", port: d.portOf("smtps") }), false],
    ["smtps, a byte a second", () => Deno.connect({ hostname: "127.0.0.1", port: d.portOf("smtps") }), true],
  ];
  await Promise.all(cases.map(async ([name, open, drip]) => {
    const conn = await open();
    const start = performance.now();
    const closed = closedAt(conn);
    if (drip) void dripBytes(conn, CLIENT_HELLO_START, closed);
    const timeout = new Promise<number>((r) => setTimeout(() => r(-1), 30_000));
    const end = await Promise.race([closed, timeout]);
    try {
      conn.close();
    } catch { /* closed */ }
    assert.notEqual(end, -1, `${name}: still open after 30 s`);
    const seconds = (end - start) / 1000;
    assert.ok(seconds >= 1.5 && seconds < 5, `${name}: closed after ${seconds.toFixed(2)} s (deadline 2 s)`);
  }));
  // Log lines are written at the end of the daemon's event-loop turn: wait for them rather than look once.
  await d.waitForLog(/TLS handshake after STARTTLS not done within smtp\.timeouts\.handshake/, 5_000);
  await d.waitForLog(/TLS handshake not done within smtp\.timeouts\.handshake/, 5_000);
  // A handshake that completes is not cut: the session is alive after the deadline.
  using c = await SmtpClient.connect(d.portOf("submission"), { caCert: tls.caPem });
  await c.reply();
  await c.cmd("EHLO client.example");
  await c.startTls();
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal((await c.cmd("EHLO client.example")).code, 250);
  assert.equal((await c.cmd("NOOP")).code, 250);
  await Deno.remove(tls.dir, { recursive: true });
});

/** A daemon delivering stall.test to `port` with the given TLS policy and a 2 s handshake deadline. */
function outboundDaemon(port: number, tlsPolicy: string): Promise<TestDaemon> {
  return startDaemon({
    logLevel: "info",
    toml: `[relay]\nreject_unknown_sender_domain = false\n[recipients]\nunknown = "accept"\n` +
      `[delivery]\n[delivery.timeouts]\ntls_handshake = "2s"\n` +
      `[delivery.retry]\nbase_delay = "1h"\njitter = 0\n` +
      `[delivery.domains."stall.test"]\nmx_override = "127.0.0.1:${port}"\ntls = "${tlsPolicy}"\n`,
  });
}

async function queueOne(d: TestDaemon, subject: string): Promise<void> {
  using c = await SmtpClient.connect(d.port);
  await c.reply();
  await c.cmd("EHLO client.example");
  assert.equal((await c.cmd("MAIL FROM:<alice@client.example>")).code, 250);
  assert.equal((await c.cmd("RCPT TO:<bob@stall.test>")).code, 250);
  assert.equal((await c.cmd("DATA")).code, 354);
  assert.equal((await c.cmd(`Subject: ${subject}\r\n\r\nbody\r\n.`)).code, 250);
}

/** Seconds from the STARTTLS of connection 1 until the daemon closed it. */
function stallSeconds(hop: ReturnType<typeof startFakeSmtp>): number | undefined {
  const starttls = hop.lines.find((l) => l.conn === 1 && /^STARTTLS$/i.test(l.line));
  const closed = hop.closedAt[0];
  return starttls && closed ? (closed - starttls.at) / 1000 : undefined;
}

/** A next hop offering STARTTLS whose first connection gets 220 to STARTTLS and then silence. */
function stallingHop() {
  const script = smtpScript({ extensions: ["STARTTLS", "8BITMIME"] });
  return startFakeSmtp((line, conn) => {
    if (/^STARTTLS$/i.test(line)) {
      return conn === 1 ? "stall:220 2.0.0 Ready to start TLS" : "454 4.7.0 TLS not available";
    }
    return script(line);
  });
}

Deno.test("outbound: a next hop that stalls after 220 to STARTTLS is given up at tls_handshake; opportunistic retries in clear text", async () => {
  await using hop = stallingHop();
  await using d = await outboundDaemon(hop.port, "opportunistic");
  await queueOne(d, "opportunistic");
  await eventually(() => hop.messages.length > 0, "delivery in clear text", 60_000);
  // The socket is destroyed at the deadline (a graceful close would linger 5 s more on this peer).
  const seconds = await eventually(() => stallSeconds(hop), "the daemon closing the stalled connection", 20_000);
  assert.ok(seconds >= 1.5 && seconds < 4.5, `cut after ${seconds.toFixed(2)} s (deadline 2 s)`);
  const [m] = hop.messages;
  assert.ok(m);
  assert.notEqual(m.conn, 1);
  assert.ok(!m.commands.some((l) => /^STARTTLS/i.test(l)), "the retry does not ask for TLS again");
  assert.match(m.data, /Subject: opportunistic\r\n/);
  assert.ok(d.logs.some((l) => /retrying in clear text \(tls = opportunistic\)/.test(l)));
  await d.waitForLog(/bob@stall\.test.*status=\W*delivered/);
});

Deno.test("outbound: with tls = required, a next hop that stalls in the TLS handshake defers the message after tls_handshake", async () => {
  await using hop = stallingHop();
  await using d = await outboundDaemon(hop.port, "required");
  await queueOne(d, "required");
  const line = await d.waitForLog(/bob@stall\.test.*status=\W*deferred/, 60_000);
  assert.match(line, /TLS handshake not done within 2000 ms|TLS/);
  // The socket is destroyed at the deadline (a graceful close would linger 5 s more on this peer).
  const seconds = await eventually(() => stallSeconds(hop), "the daemon closing the stalled connection", 20_000);
  assert.ok(seconds >= 1.5 && seconds < 4.5, `cut after ${seconds.toFixed(2)} s (deadline 2 s)`);
  assert.equal(hop.messages.length, 0, "nothing was sent in clear text");
  assert.ok(!hop.lines.some((l) => l.conn > 1 && /^MAIL/i.test(l.line)), "no clear-text retry");
});
