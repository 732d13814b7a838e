/**
 * AUTH password guessing is slowed down and locked out ([smtp.auth]), against a live
 * daemon over TLS, with client addresses set by PROXY headers:
 *
 * - each failed AUTH in a session waits longer for its `535 5.7.8` (failure_delay,
 *   doubling, capped at max_failure_delay); a successful AUTH is answered at once;
 * - the max_failures-th failure is followed by `421 4.7.0` and the session ends;
 * - failures count per client address across sessions and listeners: after
 *   ip_max_failures within ip_window, AUTH gets `454 4.7.0` at once, even with the right
 *   password, until the window has passed; other addresses are not affected;
 * - `empath_auth_failures_total{reason}` counts both;
 * - bad [smtp.auth] values stop the daemon with a message naming key, value and expectation.
 *
 * Timing assertions are lower bounds only (replies come no earlier than configured).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hashPassword } from "../../src/smtp/mod.ts";
import { runEmpath, startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { type Reply, SmtpClient } from "../../testing/smtp_client.ts";
import { tempDir } from "../../testing/temp.ts";
import { certificateChain } from "../helpers/certificate_chain.ts";

const PASSWORD = "correct horse";

/** The daemon and its certificate dir; `await using` stops the daemon and removes both dirs. */
interface Fixture extends AsyncDisposable {
  d: TestDaemon;
  caPem: string;
}

async function setup(auth: string): Promise<Fixture> {
  const tmp = await tempDir("empath-authbf-");
  const dir = tmp.path;
  const { cert, key, caPem } = await certificateChain(dir);
  await Deno.writeTextFile(join(dir, "users"), `alice:${await hashPassword(PASSWORD)}\n`);
  const d = await startDaemon({
    defaultListener: false,
    logLevel: "info",
    toml: `[tls]\ncert = "${cert}"\nkey = "${key}"\n[auth]\nusers_file = "${join(dir, "users")}"\n` +
      `[relay]\nlocal_domains = ["local.test"]\nrelay_networks = []\n` +
      `[smtp]\nmax_errors = 1000\n[smtp.auth]\n${auth}` +
      `[[listeners]]\nname = "smtps"\naddress = "127.0.0.1:0"\nrole = "smtps"\nproxy_protocol = ["127.0.0.0/8"]\n` +
      `[[listeners]]\nname = "submission"\naddress = "127.0.0.1:0"\nrole = "submission"\n` +
      `proxy_protocol = ["127.0.0.0/8"]\n`,
  });
  return {
    d,
    caPem,
    async [Symbol.asyncDispose]() {
      await d[Symbol.asyncDispose]();
      await tmp[Symbol.asyncDispose]();
    },
  };
}

/** An smtps session from `ip`, after EHLO. */
async function smtps(f: Fixture, ip: string): Promise<SmtpClient> {
  const c = await SmtpClient.connect(f.d.portOf("smtps"), {
    timeoutMs: 15_000,
    proxy: `PROXY TCP4 ${ip} 127.0.0.1 40000 465`,
    tls: "implicit",
    caCert: f.caPem,
  });
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd("EHLO guesser.test")).code, 250);
  return c;
}

/** AUTH PLAIN; returns the reply and how long it took. */
async function timedAuth(c: SmtpClient, password: string): Promise<{ reply: Reply; ms: number }> {
  const start = performance.now();
  const reply = await c.authPlain("alice", password);
  return { reply, ms: performance.now() - start };
}

async function metric(d: TestDaemon, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${d.portOf("http")}/metrics`)).text();
  const m = new RegExp(`^empath_auth_failures_total\\{reason="${reason}"\\} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("failed AUTH is delayed more each time, ends the session after max_failures, and locks the address out", async (t) => {
  await using f = await setup(
    `failure_delay = "200ms"\nmax_failure_delay = "400ms"\nmax_failures = 3\nip_max_failures = 5\nip_window = "6s"\n`,
  );
  const guesser = "198.51.100.7";
  let firstFailureSeen = 0;
  await t.step("each failure waits at least failure_delay × 2^(n-1) (capped); the third ends with 421", async () => {
    const c = await smtps(f, guesser);
    try {
      const expected = [200, 400, 400];
      for (const [i, min] of expected.entries()) {
        const { reply, ms } = await timedAuth(c, `wrong ${i}`);
        if (i === 0) firstFailureSeen = Date.now();
        assert.match(reply.text, /^535 5\.7\.8 Authentication credentials invalid$/);
        assert.ok(ms >= min, `failure ${i + 1} answered after ${ms.toFixed(0)} ms, expected at least ${min} ms`);
      }
      const bye = await c.reply();
      assert.match(bye.text, /^421 4\.7\.0 Too many failed authentication attempts/);
      assert.ok(await c.closedByServer(), "the session ends after max_failures");
    } finally {
      c.close();
    }
  });

  await t.step("a new session starts its own count; the address's failures add up across sessions", async () => {
    const c = await smtps(f, guesser);
    try {
      for (let i = 0; i < 2; i++) {
        const { reply, ms } = await timedAuth(c, `again ${i}`);
        assert.match(reply.text, /^535 5\.7\.8 /);
        assert.ok(ms >= 200 * 2 ** i, `failure ${i + 1} of session 2 took ${ms.toFixed(0)} ms`);
      }
      // Five failures from this address now: the next AUTH is refused, right password or not.
      const locked = await c.authPlain("alice", PASSWORD);
      assert.match(locked.text, /^454 4\.7\.0 Too many failed authentication attempts from 198\.51\.100\.7/);
    } finally {
      c.close();
    }
  });

  await t.step("the lockout holds in new sessions and on the other listener (STARTTLS, AUTH LOGIN)", async () => {
    const c = await smtps(f, guesser);
    assert.match((await c.authPlain("alice", PASSWORD)).text, /^454 4\.7\.0 /);
    assert.equal((await c.cmd("MAIL FROM:<alice@local.test>")).code, 530, "still not authenticated");
    c.close();
    const sub = await SmtpClient.connect(f.d.portOf("submission"), {
      timeoutMs: 15_000,
      proxy: `PROXY TCP4 ${guesser} 127.0.0.1 40001 587`,
      caCert: f.caPem,
    });
    try {
      assert.equal((await sub.reply()).code, 220);
      await sub.cmd("EHLO guesser.test");
      await sub.startTls();
      assert.match((await sub.cmd("EHLO guesser.test")).text, /AUTH PLAIN LOGIN/);
      assert.equal((await sub.cmd("AUTH LOGIN")).code, 334);
      assert.equal((await sub.cmd(btoa("alice"))).code, 334);
      assert.match((await sub.cmd(btoa(PASSWORD))).text, /^454 4\.7\.0 Too many failed authentication attempts/);
    } finally {
      sub.close();
    }
  });

  await t.step("another address with the right password is not affected and may relay", async () => {
    const c = await smtps(f, "198.51.100.8");
    try {
      assert.match((await c.authPlain("alice", PASSWORD)).text, /^235 /);
      assert.equal((await c.cmd("MAIL FROM:<alice@local.test>")).code, 250);
      assert.equal((await c.cmd("RCPT TO:<friend@remote.example>")).code, 250);
    } finally {
      c.close();
    }
  });

  await t.step("failures are counted in empath_auth_failures_total", async () => {
    assert.equal(await metric(f.d, "credentials"), 5);
    assert.equal(await metric(f.d, "locked_out"), 3);
  });

  await t.step("once the window has passed, the right password works again from that address", async () => {
    // The oldest of the five failures leaves the window ip_window after it was recorded.
    await sleep(Math.max(0, firstFailureSeen + 6_000 + 300 - Date.now()));
    const c = await smtps(f, guesser);
    try {
      assert.match((await c.authPlain("alice", PASSWORD)).text, /^235 /);
    } finally {
      c.close();
    }
  });
});

Deno.test("a correct password is answered without the failure delay; AUTH identities with control characters get 501", async () => {
  await using f = await setup(`failure_delay = "3s"\nmax_failure_delay = "3s"\nip_max_failures = 0\n`);
  const c = await smtps(f, "203.0.113.50");
  try {
    const bad = await timedAuth(c, "nope");
    assert.match(bad.reply.text, /^535 5\.7\.8 /);
    assert.ok(bad.ms >= 3000, `failure answered after ${bad.ms.toFixed(0)} ms`);
    const good = await timedAuth(c, PASSWORD);
    assert.match(good.reply.text, /^235 /);
    assert.ok(good.ms < 3000, `success took ${good.ms.toFixed(0)} ms: it must not wait for the failure delay`);
  } finally {
    c.close();
  }
  // Identities with line breaks or NUL never reach the password check (nor logs or headers).
  const d = await smtps(f, "203.0.113.51");
  try {
    for (const user of ["alice\r\nX-Injected: yes", "alice\nbob", "ali\x00ce", "alice\x85"]) {
      const token = btoa(String.fromCharCode(...new TextEncoder().encode(`\0${user}\0${PASSWORD}`)));
      assert.match((await d.cmd(`AUTH PLAIN ${token}`)).text, /^501 /, JSON.stringify(user));
    }
    assert.equal((await d.cmd("AUTH LOGIN")).code, 334);
    assert.match((await d.cmd(btoa("alice\r\nX-Injected: yes"))).text, /^501 /);
    assert.match((await d.authPlain("alice", PASSWORD)).text, /^235 /, "the session is still usable");
  } finally {
    d.close();
  }
  assert.ok(!f.d.logs.some((l) => l.startsWith("X-Injected")), "no identity text starts a log line");
});

Deno.test("invalid [smtp.auth] settings stop the daemon with a clear message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-authcfg-" });
  try {
    const path = join(dir, "config.toml");
    await Deno.writeTextFile(
      path,
      `[smtp.auth]\nfailure_delay = "10s"\nmax_failure_delay = "2s"\nmax_failures = 0\nip_max_failures = -1\nip_window = "soon"\n`,
    );
    const r = await runEmpath(["--check-config", path], dir);
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /smtp\.auth\.max_failures = 0: expected a positive whole number/);
    assert.match(r.stderr, /smtp\.auth\.ip_max_failures = -1: expected a whole number of failures/);
    assert.match(r.stderr, /smtp\.auth\.ip_window = "soon": expected a duration/);
    await Deno.writeTextFile(path, `[smtp.auth]\nfailure_delay = "10s"\nmax_failure_delay = "2s"\n`);
    const r2 = await runEmpath(["--check-config", path], dir);
    assert.equal(r2.code, 78);
    assert.match(
      r2.stderr,
      /smtp\.auth\.failure_delay = "10s": expected at most smtp\.auth\.max_failure_delay \("2s"\)/,
    );
    await Deno.writeTextFile(path, `[smtp.auth]\nmax_failure_delay = "5m"\n`);
    const r3 = await runEmpath(["--check-config", path], dir);
    assert.match(r3.stderr, /smtp\.auth\.max_failure_delay = "5m": expected at most "60s"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
