import assert from "node:assert/strict";
import { createRecipientProbe, parseProbeTarget, ProbeTargetError } from "../../src/smtp/recipient_probe.ts";

/** A tiny LMTP/SMTP server on a real socket that knows a fixed set of users. */
function fakeFinalHop(listener: Deno.Listener, users: Set<string>, log: string[], rcptReply?: (a: string) => string) {
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const enc = new TextEncoder();
        const dec = new TextDecoder();
        const w = (s: string) => conn.write(enc.encode(s + "\r\n")).catch(() => 0);
        await w("220 hop ready");
        let buf = "";
        const chunk = new Uint8Array(1024);
        while (true) {
          const n = await conn.read(chunk).catch(() => null);
          if (n === null) break;
          buf += dec.decode(chunk.subarray(0, n));
          let nl;
          while ((nl = buf.indexOf("\r\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 2);
            log.push(line);
            const rcpt = /^RCPT TO:<(.*)>$/i.exec(line);
            if (/^(LHLO|EHLO) /i.test(line)) await w("250-hop\r\n250 PIPELINING");
            else if (/^MAIL FROM:<>$/i.test(line)) await w("250 2.1.0 Ok");
            else if (rcpt) {
              const a = rcpt[1] ?? "";
              await w(rcptReply ? rcptReply(a) : users.has(a) ? "250 2.1.5 Ok" : "550 5.1.1 User unknown");
            } else if (/^QUIT$/i.test(line)) {
              await w("221 bye");
              conn.close();
              return;
            } else await w("500 what");
          }
        }
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  })();
}

Deno.test("a probe verifies recipients over LMTP on a unix socket and caches both answers", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lmtp`;
  const listener = Deno.listen({ transport: "unix", path });
  const log: string[] = [];
  fakeFinalHop(listener, new Set(["alice@example.com"]), log);
  let clock = 0;
  const probe = createRecipientProbe({
    target: parseProbeTarget(`lmtp:unix:${path}`),
    helo: "mx.test",
    positiveTtlMs: 60_000,
    negativeTtlMs: 10_000,
    timeoutMs: 5_000,
    now: () => clock,
  });
  const known = await probe.check("alice@example.com");
  assert.deepEqual([known.verdict, known.cached], ["known", false]);
  const unknown = await probe.check("nobody@example.com");
  assert.equal(unknown.verdict, "unknown");
  assert.match(unknown.reply, /550 5\.1\.1 User unknown/);
  assert.ok(log.includes("LHLO mx.test"), "LMTP greets with LHLO");
  const sessions = log.filter((l) => l.startsWith("LHLO")).length;
  assert.equal((await probe.check("ALICE@example.com")).cached, true);
  assert.equal((await probe.check("nobody@example.com")).cached, true);
  assert.equal(log.filter((l) => l.startsWith("LHLO")).length, sessions, "answers came from the cache");
  clock += 10_000; // the negative answer expires first
  assert.equal((await probe.check("nobody@example.com")).cached, false);
  assert.equal((await probe.check("alice@example.com")).cached, true);
  listener.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a temporary answer or a dead final hop is a tempfail and is not cached", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const log: string[] = [];
  fakeFinalHop(listener, new Set(), log, () => "452 4.2.2 Mailbox full");
  const probe = createRecipientProbe({
    target: parseProbeTarget(`smtp:127.0.0.1:${(listener.addr as Deno.NetAddr).port}`),
    helo: "mx.test",
    positiveTtlMs: 60_000,
    negativeTtlMs: 60_000,
    timeoutMs: 5_000,
  });
  const r = await probe.check("a@example.com");
  assert.equal(r.verdict, "tempfail");
  assert.ok(log.includes("EHLO mx.test"));
  assert.equal(probe.size, 0);
  listener.close();
  const dead = await probe.check("a@example.com");
  assert.equal(dead.verdict, "tempfail");
  assert.match(dead.reply, /smtp:127\.0\.0\.1/);
});

Deno.test("a probe target that cannot be parsed names the expected forms", () => {
  assert.deepEqual(parseProbeTarget("lmtp:[::1]:24").connect, { hostname: "::1", port: 24 });
  for (const bad of ["lmtp", "http://x", "smtp:host", "smtp:host:99999", "lmtp:unix:"]) {
    assert.throws(() => parseProbeTarget(bad), ProbeTargetError, bad);
  }
});
