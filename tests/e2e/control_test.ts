/**
 * The control plane end to end: the real daemon, the real empathctl (ctl.ts) as a
 * subprocess, every command in text and JSON modes, and the audit trail.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  restartDaemon,
  START_PERMISSIONS,
  startDaemon,
  taskPermissions,
  type TestDaemon,
} from "../../testing/daemon.ts";
import { ctl, ctlJson, socketOf } from "../../testing/ctl.ts";
import { eventually } from "../../testing/poll.ts";
import { freePort } from "../../testing/net.ts";
import { sendMessage } from "../../testing/smtp_client.ts";
import { encodeFrame, FrameReader } from "../../src/control/mod.ts";
import { spooledIds } from "../../testing/spool_reader.ts";

const msg = (subject: string) =>
  `From: a@sender.test\r\nTo: b@dest.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@sender.test>\r\n\r\nhello\r\n`;

/** Delivery on, every destination routed to a closed port: messages stay deferred. */
function deferringToml(port: number) {
  return `[delivery]\nenabled = true\n[delivery.retry]\nbase_delay = "1h"\n` +
    `[delivery.circuit_breaker]\nfailures = 1000\n` +
    `[delivery.domains."dest.test"]\nmx_override = "127.0.0.1:${port}"\n` +
    `[delivery.domains."other.test"]\nmx_override = "127.0.0.1:${port}"\n` +
    `[delivery.domains."sender.test"]\nmx_override = "127.0.0.1:${port}"\n`;
}

type Row = { id: string; status: string; sender: string; domains: string[]; lastReply?: string };

async function listed(d: TestDaemon, args: string[] = []): Promise<Row[]> {
  return (await ctlJson<{ messages: Row[] }>(d, ["queue", "list", ...args])).messages;
}

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 10_000) =>
  eventually(fn, what, timeoutMs);

async function auditLines(d: TestDaemon) {
  const text = await Deno.readTextFile(join(d.dataDir, "audit.log")).catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

Deno.test("empathctl runs every command against a live daemon, in text and JSON", async (t) => {
  const dead = freePort();
  await using d = await startDaemon({ toml: deferringToml(dead), logLevel: "info" });
  for (const [i, to] of [["b@dest.test"], ["c@dest.test", "d@other.test"], ["e@other.test"]].entries()) {
    const r = await sendMessage(d.port, "a@sender.test", to, msg(`m${i}`));
    assert.equal(r.code, 250);
  }
  await waitFor("three deferred messages", async () => (await listed(d, ["--status", "deferred"])).length === 3);

  await t.step("system ping and status", async () => {
    const ping = await ctl(d, ["system", "ping"]);
    assert.equal(ping.code, 0, ping.stderr);
    assert.match(ping.stdout, /^pong from empath \d+\.\d+\.\d+/);
    const status = await ctl(d, ["system", "status"]);
    assert.equal(status.code, 0);
    assert.match(status.stdout, /listeners\s+mx 127\.0\.0\.1:\d+ \(mx\)/);
    assert.match(status.stdout, /queue\s+.*deferred 3/);
    assert.match(status.stdout, new RegExp(`config\\s+${d.configPath.replace(/[.]/g, "\\.")}`));
    const json = await ctlJson<Record<string, unknown>>(d, ["system", "status"]);
    assert.equal((json.queue as Record<string, number>).deferred, 3);
    assert.equal(json.configPath, d.configPath);
    assert.equal(typeof json.dnsCacheEntries, "number");
    assert.equal(typeof json.uptimeSeconds, "number");
  });

  await t.step("queue list filters by status and domain, with a limit", async () => {
    const text = await ctl(d, ["queue", "list"]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^ID\s+STATUS\s+AGE/);
    assert.match(text.stdout, /3 message\(s\)/);
    assert.equal((await listed(d, ["--domain", "other.test"])).length, 2);
    assert.equal((await listed(d, ["--domain", "dest.test", "--status", "deferred"])).length, 2);
    const limited = await ctlJson<{ messages: Row[]; truncated: boolean }>(d, ["queue", "list", "--limit", "1"]);
    assert.equal(limited.messages.length, 1);
    assert.equal(limited.truncated, true);
    assert.equal((await ctl(d, ["queue", "list", "--status", "lost"])).code, 2, "bad status is a usage error");
  });

  const [first] = await listed(d, ["--domain", "dest.test", "--limit", "1"]);
  assert.ok(first, "a message to dest.test is queued");
  await t.step("queue view shows envelope, headers, recipients and attempts with the remote reply", async () => {
    const text = await ctl(d, ["queue", "view", first.id]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /sender\s+<a@sender\.test>/);
    assert.match(text.stdout, /subject\s+m0/);
    assert.match(text.stdout, /b@dest\.test\s+deferred\s+1/);
    assert.match(text.stdout, /Attempts \(1\)/);
    assert.match(text.stdout, new RegExp(`127\\.0\\.0\\.1:${dead}`));
    const json = await ctlJson<{ attempts: { result: { reply: string }[] }[]; headers: Record<string, string> }>(
      d,
      ["queue", "view", first.id],
    );
    assert.equal(json.headers["message-id"], "<m0@sender.test>");
    assert.match(json.attempts[0]!.result[0]!.reply, /^451 4\.4\.1 /);
    const missing = await ctl(d, ["queue", "view", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no message 01ARZ3NDEKTSV4RRFFQ69G5FAV/);
  });

  await t.step("queue summary: one row per destination with count, age, last error and state", async () => {
    const text = await ctl(d, ["queue", "summary"]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /DESTINATION\s+MESSAGES\s+OLDEST\s+STATE/);
    assert.match(text.stdout, /dest\.test\s+2\s+\S+\s+ok/);
    const json = await ctlJson<{ destinations: { domain: string; messages: number; lastError?: string }[] }>(
      d,
      ["queue", "summary"],
    );
    const other = json.destinations.find((x) => x.domain === "other.test")!;
    assert.equal(other.messages, 2);
    assert.match(other.lastError ?? "", /^451 4\.4\.1 .*ECONNREFUSED/);
  });

  await t.step("queue stats: counts by status and domain", async () => {
    const text = await ctl(d, ["queue", "stats"]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /queue\s+3 message\(s\)/);
    assert.match(text.stdout, /rates\/s\s+received/);
    const json = await ctlJson<{ total: number; domains: { domain: string; messages: number }[] }>(d, [
      "queue",
      "stats",
    ]);
    assert.equal(json.total, 3);
    assert.deepEqual(json.domains.map((x) => x.messages).sort(), [2, 2]);
  });

  await t.step("queue freeze and unfreeze, for a domain and for everything", async () => {
    const f = await ctl(d, ["queue", "freeze", "--domain", "other.test"]);
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stdout, /2 message\(s\) frozen/);
    assert.equal((await listed(d, ["--status", "frozen"])).length, 2);
    assert.deepEqual(await ctlJson(d, ["queue", "unfreeze", "--domain", "other.test"]), {
      scope: "domain",
      unfrozen: 2,
    });
    const all = await ctlJson<{ frozen: number }>(d, ["queue", "freeze"]);
    assert.equal(all.frozen, 3);
    assert.match((await ctl(d, ["system", "status"])).stdout, /FROZEN/);
    assert.match((await ctl(d, ["queue", "unfreeze"])).stdout, /delivery resumed; 3 message\(s\) released/);
    await waitFor("all deferred again", async () => (await listed(d, ["--status", "deferred"])).length === 3);
  });

  await t.step("queue retry makes a message due and it is attempted again", async () => {
    const before = (await ctlJson<{ recipients: { attempts: number }[] }>(d, ["queue", "view", first.id]))
      .recipients[0]?.attempts ?? NaN;
    const r = await ctl(d, ["queue", "retry", first.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1 message\(s\) scheduled/);
    await waitFor("a second attempt", async () => {
      const v = await ctlJson<{ recipients: { attempts: number }[] }>(d, ["queue", "view", first.id]);
      return (v.recipients[0]?.attempts ?? 0) > before;
    });
    assert.deepEqual(await ctlJson(d, ["queue", "retry", "--all", "--domain", "other.test"]), { retried: 2 });
    assert.equal((await ctl(d, ["queue", "retry"])).code, 2, "retry without a target is a usage error");
    const p = await ctlJson<{ scheduled: number }>(d, ["queue", "process-now"]);
    assert.ok(p.scheduled >= 1);
  });

  await t.step("queue suspend holds a destination, is listed, and can be cancelled", async () => {
    const s = await ctl(d, ["queue", "suspend", "dest.test", "--for", "10m"]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /delivery to dest\.test suspended until .* \(in (9|10)m/);
    const list = await ctlJson<{ suspensions: { domain: string; until: number }[] }>(d, ["queue", "suspended"]);
    assert.equal(list.suspensions[0]?.domain, "dest.test");
    assert.ok((list.suspensions[0]?.until ?? 0) > Date.now() + 9 * 60_000);
    assert.match((await ctl(d, ["queue", "summary"])).stdout, /dest\.test\s+2\s+\S+\s+suspended in/);
    assert.equal((await ctl(d, ["queue", "suspend", "dest.test"])).code, 2, "--for is required");
    assert.equal((await ctl(d, ["queue", "suspend", "dest.test", "--for", "soon"])).code, 2);
    assert.match((await ctl(d, ["queue", "resume", "dest.test"])).stdout, /resumed/);
    assert.match((await ctl(d, ["queue", "suspended"])).stdout, /no destination is suspended/);
    const short = await ctl(d, ["queue", "suspend", "dest.test", "--for", "1s"]);
    assert.equal(short.code, 0);
    await new Promise((r) => setTimeout(r, 1200));
    assert.match((await ctl(d, ["queue", "suspended"])).stdout, /no destination is suspended/, "lifts itself");
  });

  await t.step("queue delete asks first, and removes state and spool data with --yes", async () => {
    const [victim] = await listed(d, ["--domain", "other.test", "--limit", "1"]);
    assert.ok(victim, "a message to other.test is queued");
    const no = await ctl(d, ["queue", "delete", victim.id], { stdin: "n\n" });
    assert.equal(no.code, 1);
    assert.match(no.stderr, /Delete message .*\? \[y\/N\]/);
    assert.match(no.stderr, /not deleted/);
    assert.ok((await spooledIds(d.dataDir)).includes(victim.id), "data kept");
    const yes = await ctl(d, ["queue", "delete", victim.id], { stdin: "y\n" });
    assert.equal(yes.code, 0, yes.stderr);
    assert.match(yes.stdout, new RegExp(`deleted ${victim.id}`));
    assert.ok(!(await spooledIds(d.dataDir)).includes(victim.id), "data removed");
    const again = await ctl(d, ["queue", "delete", victim.id, "--yes"]);
    assert.equal(again.code, 1);
  });

  await t.step("queue bounce fails the message now and queues a DSN to the sender", async () => {
    const [victim] = await listed(d, ["--domain", "dest.test", "--limit", "1"]);
    assert.ok(victim, "a message to dest.test is queued");
    const r = await ctl(d, ["queue", "bounce", victim.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1 message\(s\) bounced/);
    const dsn = await waitFor("a DSN to the sender", async () => (await listed(d)).find((m) => m.sender === ""));
    assert.deepEqual(dsn.domains, ["sender.test"]);
    assert.equal((await ctl(d, ["queue", "view", victim.id])).code, 1, "the bounced message is gone");
  });

  await t.step("dns overrides and cache", async () => {
    const set = await ctl(d, ["dns", "set-override", "runtime.test", "127.0.0.1:2526"]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /runtime\.test -> 127\.0\.0\.1:2526/);
    const list = await ctlJson<{ overrides: { domain: string; port: number }[] }>(d, ["dns", "list-overrides"]);
    assert.ok(list.overrides.some((o) => o.domain === "runtime.test" && o.port === 2526));
    assert.ok(list.overrides.some((o) => o.domain === "dest.test"), "config overrides are listed too");
    assert.match((await ctl(d, ["dns", "list-overrides"])).stdout, /runtime\.test\s+127\.0\.0\.1:2526/);
    assert.equal((await ctl(d, ["dns", "remove-override", "runtime.test"])).code, 0);
    assert.equal((await ctl(d, ["dns", "remove-override", "runtime.test"])).code, 1, "already removed");
    assert.equal((await ctl(d, ["dns", "set-override", "x.test", "nonsense"])).code, 2);
    const cache = await ctl(d, ["dns", "list-cache"]);
    assert.equal(cache.code, 0);
    assert.match(cache.stdout, /NAME\s+TYPE\s+EXPIRES\s+VALUE/);
    // "invalid" is reserved (RFC 6761): the lookup answers NXDOMAIN quickly, which is cached.
    const refresh = await ctl(d, ["dns", "refresh", "nothing.invalid", "--json"]);
    assert.equal(refresh.code, 0, refresh.stderr);
    assert.equal(JSON.parse(refresh.stdout).domain, "nothing.invalid");
    const cleared = await ctlJson<{ cleared: number }>(d, ["dns", "clear-cache"]);
    assert.equal(typeof cleared.cleared, "number");
    assert.equal((await ctlJson<{ entries: unknown[] }>(d, ["dns", "list-cache"])).entries.length, 0);
  });

  await t.step("smtp connections lists active sessions with peer, state, TLS and age", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
    const buf = new Uint8Array(512);
    await conn.read(buf);
    await conn.write(new TextEncoder().encode("EHLO watcher.test\r\n"));
    await conn.read(buf);
    try {
      const text = await ctl(d, ["smtp", "connections"]);
      assert.equal(text.code, 0);
      assert.match(text.stdout, /mx\s+127\.0\.0\.1:\d+\s+ehlo\s+no/);
      const json = await ctlJson<{ sessions: { state: string; tls: boolean; ageSeconds: number }[] }>(d, [
        "smtp",
        "connections",
      ]);
      assert.equal(json.sessions.length, 1);
      assert.equal(json.sessions[0]?.tls, false);
    } finally {
      conn.close();
    }
  });

  await t.step("delivery rate-limit and system log-level change at runtime", async () => {
    const r = await ctl(d, ["delivery", "rate-limit", "dest.test", "2.5"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /dest\.test: at most 2\.5 message\(s\)\/s/);
    assert.deepEqual(await ctlJson(d, ["delivery", "rate-limit", "dest.test", "0"]), {
      domain: "dest.test",
      rate: null,
    });
    assert.equal((await ctl(d, ["delivery", "rate-limit", "dest.test", "fast"])).code, 2);
    const lvl = await ctl(d, ["system", "log-level", "debug"]);
    assert.equal(lvl.code, 0, lvl.stderr);
    assert.match(lvl.stdout, /log level info -> debug/);
    assert.equal((await ctl(d, ["system", "log-level", "loud"])).code, 2);
    await ctl(d, ["system", "ping"]);
    await d.waitForLog(/"level":"DEBUG"/, 5000);
  });

  await t.step("system reload-config applies a valid file and rejects an invalid one", async () => {
    const original = await Deno.readTextFile(d.configPath);
    await Deno.writeTextFile(d.configPath, original.replace('base_delay = "1h"', 'base_delay = "2h"'));
    const ok = await ctlJson<{ ok: boolean; changed: string[] }>(d, ["system", "reload-config"]);
    assert.equal(ok.ok, true);
    // The file watcher may apply the edit before the command does (200 ms debounce vs. a CLI
    // process start); either way, exactly the delivery section changed and nothing else.
    assert.ok(["delivery", ""].includes(ok.changed.join(",")), `changed: ${ok.changed}`);
    await d.waitForLog(/config reloaded.*delivery/s, 5000);
    await Deno.writeTextFile(d.configPath, original + "\n[smtp]\nmax_recipients = -1\n");
    const bad = await ctl(d, ["system", "reload-config"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /rejected, the old one stays: .*smtp\.max_recipients/s);
    const status = await ctlJson<{ lastReload: { ok: boolean } }>(d, ["system", "status"]);
    assert.equal(status.lastReload.ok, false);
    await Deno.writeTextFile(d.configPath, original);
  });

  await t.step("every state change is in the audit log with who, what, when and result", async () => {
    const lines = await auditLines(d);
    const control = lines.filter((l) => l.type === "control");
    const commands = new Set(control.map((l) => l.command));
    for (
      const c of [
        "queue.freeze",
        "queue.unfreeze",
        "queue.retry",
        "queue.suspend",
        "queue.delete",
        "queue.bounce",
        "dns.set-override",
        "system.log-level",
        "system.reload-config",
        "delivery.rate-limit",
      ]
    ) assert.ok(commands.has(c), `${c} audited`);
    assert.ok(!commands.has("queue.list"), "read-only commands are not audited");
    const del = control.find((l) => l.command === "queue.delete" && l.result === "ok")!;
    assert.equal(del.peer.uid, Deno.uid());
    // Deno lets only --allow-all read /proc/<pid>, so under `deno task start`'s permissions the
    // uid is the client's claim (the 0600 socket already limits clients to the owner and root).
    assert.equal(del.peer.verified, false);
    assert.ok(Number.isInteger(del.peer.pid));
    assert.ok(!Number.isNaN(Date.parse(del.ts)));
    assert.ok(control.some((l) => l.command === "system.reload-config" && l.result === "error"));
    const delivery = lines.filter((l) => l.type === "delivery");
    assert.ok(delivery.some((l) => l.outcome === "deferred" && /^451 /.test(l.reply) && l.attempt >= 1));
    assert.ok(delivery.some((l) => l.outcome === "failed" && l.reason === "bounced by operator"));
  });
});

Deno.test("usage errors exit 2 and an unreachable daemon exits 3 naming the socket", async () => {
  const unknown = await ctl("/nonexistent/control.sock", ["queue", "frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "queue frobnicate"; queue commands: list, view/);
  assert.equal((await ctl("/nonexistent/control.sock", ["nogroup", "x"])).code, 2);
  assert.equal((await ctl("/nonexistent/control.sock", ["queue", "list", "--bogus"])).code, 2);
  assert.equal((await ctl("/nonexistent/control.sock", ["queue", "view"])).code, 2, "missing ID");
  assert.equal(
    (await ctl("/nonexistent/control.sock", ["queue", "list", "--yes"])).code,
    2,
    "option of another command",
  );
  const help = await ctl("/nonexistent/control.sock", ["queue", "suspend", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: empathctl queue suspend DOMAIN --for DURATION/);
  const down = await ctl("/nonexistent/control.sock", ["system", "ping"]);
  assert.equal(down.code, 3);
  assert.match(down.stderr, /cannot reach the daemon at \/nonexistent\/control\.sock.*--socket PATH or EMPATH_SOCKET/);
  const env = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...taskPermissions("ctl"), new URL("../../ctl.ts", import.meta.url).pathname, "system", "ping"],
    env: { EMPATH_SOCKET: "/nonexistent/env.sock", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(env.code, 3);
  assert.match(new TextDecoder().decode(env.stderr), /\/nonexistent\/env\.sock/);
});

Deno.test("the socket is owner-only, a second instance is refused, and a stale socket is removed", async () => {
  await using d = await startDaemon({ logLevel: "info" });
  const info = await Deno.stat(socketOf(d));
  assert.equal(info.mode! & 0o777, 0o600);
  // A second daemon on the same data dir (other ports) finds the socket answering and refuses.
  const second = new Deno.Command(Deno.execPath(), {
    args: ["run", ...START_PERMISSIONS, new URL("../../main.ts", import.meta.url).pathname, "--config", d.configPath],
    stdout: "piped",
    stderr: "piped",
  });
  const out = await second.output();
  assert.equal(out.code, 1);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /another Empath instance is running: its control socket .* answers/,
  );
  assert.equal((await ctl(d, ["system", "ping"])).code, 0, "the first instance is untouched");
  if (Deno.uid() === 0) {
    // Another local user cannot connect (checked with Python as uid 65534).
    const py = await new Deno.Command("setpriv", {
      args: [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "/usr/bin/python3",
        "-c",
        `import socket\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(${
          JSON.stringify(socketOf(d))
        })\n  print("connected")\nexcept PermissionError:\n  print("denied")`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(py.stdout).trim(), "denied");
  }
  await d.kill();
  assert.ok((await Deno.lstat(socketOf(d))).isSocket, "SIGKILL leaves the socket file behind");
  const again = await restartDaemon(d);
  try {
    await again.waitForLog(/removed a stale control socket/);
    assert.equal((await ctl(again, ["system", "ping"])).code, 0);
  } finally {
    await again.stop();
  }
});

Deno.test("a token file is required when configured, and checked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-token-" });
  const tokenFile = join(dir, "token");
  await Deno.writeTextFile(tokenFile, "s3cret-token\n", { mode: 0o600 });
  const wrongFile = join(dir, "wrong");
  await Deno.writeTextFile(wrongFile, "not-the-token\n");
  const d = await startDaemon({ toml: `[control]\ntoken_file = "${tokenFile}"\n`, logLevel: "info" });
  try {
    const none = await ctl(d, ["system", "ping"]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /wrong or missing token/);
    const wrong = await ctl(d, ["system", "ping", "--token-file", wrongFile]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /wrong or missing token/);
    const right = await ctl(d, ["system", "ping", "--token-file", tokenFile]);
    assert.equal(right.code, 0, right.stderr);
    const env = await ctl(d, ["system", "ping"], { env: { EMPATH_TOKEN_FILE: tokenFile } });
    assert.equal(env.code, 0, env.stderr);
  } finally {
    await d.stop();
    await d.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("queue stats --watch reuses one connection and reconnects after a daemon restart", async () => {
  let d = await startDaemon({ logLevel: "info" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...taskPermissions("ctl"),
      new URL("../../ctl.ts", import.meta.url).pathname,
      "--socket",
      socketOf(d),
      "queue",
      "stats",
      "--watch",
      "--interval",
      "0.2",
      "--count",
      "8",
      "--json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const samples: { startedAt: number; connection: number }[] = [];
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const next = async () => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("watch ended early");
      buffered += value;
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return JSON.parse(line);
  };
  try {
    for (let i = 0; i < 3; i++) samples.push(await next());
    assert.equal(new Set(samples.map((s) => s.connection)).size, 1, "one connection for every sample");
    await d.stop();
    d = await restartDaemon(d);
    while (samples.length < 8) samples.push(await next());
    const runs = new Set(samples.map((s) => s.startedAt));
    assert.equal(runs.size, 2, "samples came from both daemon runs");
    const after = samples.filter((s) => s.startedAt !== samples[0]?.startedAt);
    assert.equal(new Set(after.map((s) => s.connection)).size, 1, "one new connection after the restart");
    const status = await child.status;
    assert.equal(status.code, 0);
    const err = await new Response(child.stderr).text();
    assert.match(err, /retrying every 0\.2s/);
  } finally {
    try {
      child.kill();
    } catch { /* exited */ }
    await child.status;
    await d.stop();
    await d.cleanup();
  }
});

Deno.test("the daemon refuses oversized and malformed requests; empathctl refuses an oversized answer", async () => {
  await using d = await startDaemon({ toml: `[control]\nmax_request = "4KB"\n`, logLevel: "info" });
  for (let i = 0; i < 3; i++) {
    assert.equal((await sendMessage(d.port, "a@sender.test", ["b@dest.test"], msg(`big${i}`))).code, 250);
  }
  const big = await ctl(d, ["queue", "view", "Z".repeat(10_000)]);
  assert.equal(big.code, 1);
  assert.match(big.stderr, /over the limit of 4000 bytes/);
  const small = await ctl(d, ["queue", "list", "--max-response", "300"]);
  assert.equal(small.code, 1);
  assert.match(small.stderr, /response refused: frame of \d+ bytes is over the limit of 300 bytes/);
  assert.equal((await ctl(d, ["queue", "list", "--max-response", "1000000"])).code, 0);
  // Raw frames: an unknown command and a future protocol version get typed errors.
  const conn = await Deno.connect({ transport: "unix", path: socketOf(d) });
  const reader = new FrameReader(conn);
  await conn.write(encodeFrame({ version: 1, id: 7, command: "queue.explode", args: {} }));
  const unknown = await reader.read({ maxBytes: 65536, timeoutMs: 5000 }) as { id: number; error: { code: string } };
  assert.equal(unknown.id, 7);
  assert.equal(unknown.error.code, "UNKNOWN_COMMAND");
  await conn.write(encodeFrame({ version: 2, id: 8, command: "system.ping", args: {} }));
  const version = await reader.read({ maxBytes: 65536, timeoutMs: 5000 }) as { error: { code: string } };
  assert.equal(version.error.code, "UNSUPPORTED_VERSION");
  conn.close();
  assert.equal((await ctl(d, ["system", "ping"])).code, 0, "the daemon keeps running");
});
