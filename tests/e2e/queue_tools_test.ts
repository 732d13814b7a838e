/**
 * The operator's queue tools end to end (issue #19 section 2): the real daemon and the
 * real empathctl: queue cat, list --from/--to, bulk delete|retry|hold|release|bounce by
 * selector and by ids on stdin, bounce --reason in the DSN, smtp connections/kill,
 * message history from the audit log, and trace smtp streaming a live session.
 */
import assert from "node:assert/strict";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { ctl, ctlJson, socketOf } from "../../testing/ctl.ts";
import { eventually } from "../../testing/poll.ts";
import { freePort as closedPort } from "../../testing/net.ts";
import { sendMessage, SmtpClient } from "../../testing/smtp_client.ts";
import { taskPermissions } from "../../testing/repo.ts";
import { startFaultSink } from "../../testing/fault_sink.ts";

const REPO = new URL("../../", import.meta.url).pathname;

const msg = (subject: string) =>
  `From: x@spam.test\r\nTo: y@dest.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@q.test>\r\n\r\nhello ${subject}\r\n`;

function deferringToml(port: number) {
  return `[delivery]\nenabled = true\n[delivery.retry]\nbase_delay = "1h"\n[delivery.circuit_breaker]\nfailures = 1000\n` +
    ["dest.test", "other.test", "spam.test", "sender.test"]
      .map((d) => `[delivery.domains."${d}"]\nmx_override = "127.0.0.1:${port}"\n`).join("");
}

type Row = {
  id: string;
  status: string;
  sender: string;
  recipientStates: { address: string; status: string; attempts: number }[];
};
const listed = async (d: TestDaemon, args: string[] = []) =>
  (await ctlJson<{ messages: Row[] }>(d, ["queue", "list", ...args])).messages;

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 10_000) =>
  eventually(fn, what, timeoutMs);

Deno.test("queue tools: cat, search, bulk actions by selector and stdin, bounce reason, history", async (t) => {
  const d = await startDaemon({ toml: deferringToml(closedPort()), logLevel: "info" });
  try {
    for (let i = 0; i < 3; i++) {
      assert.equal((await sendMessage(d.port, "x@spam.test", [`y${i}@dest.test`], msg(`spam${i}`))).code, 250);
    }
    for (let i = 0; i < 2; i++) {
      assert.equal((await sendMessage(d.port, "a@sender.test", [`b${i}@other.test`], msg(`ham${i}`))).code, 250);
    }
    await waitFor("five deferred", async () => (await listed(d, ["--status", "deferred"])).length === 5);

    await t.step("queue list --from/--to, with recipients and their state in --json", async () => {
      const spam = await listed(d, ["--from", "*@SPAM.test"]);
      assert.equal(spam.length, 3);
      assert.equal(spam[0]?.recipientStates.length, 1);
      assert.match(spam[0]?.recipientStates[0]?.address ?? "", /^y\d@dest\.test$/);
      assert.equal(spam[0]?.recipientStates[0]?.status, "deferred");
      assert.equal((await listed(d, ["--to", "b1@other.test"])).length, 1);
      assert.equal((await listed(d, ["--to", "b?@other.*"])).length, 2);
      const text = await ctl(d, ["queue", "list", "--from", "a@sender.test"]);
      assert.match(text.stdout, /2 message\(s\)/);
    });

    await t.step("queue cat prints the raw message, its headers or its body", async () => {
      const [one] = await listed(d, ["--to", "y0@dest.test"]);
      const all = await ctl(d, ["queue", "cat", one!.id]);
      assert.equal(all.code, 0, all.stderr);
      assert.match(all.stdout, /Subject: spam0\r?\n/);
      assert.match(all.stdout, /hello spam0/);
      const headers = await ctl(d, ["queue", "cat", one!.id, "--headers"]);
      assert.match(headers.stdout, /Subject: spam0/);
      assert.doesNotMatch(headers.stdout, /hello spam0/);
      const body = await ctl(d, ["queue", "cat", one!.id, "--body"]);
      assert.match(body.stdout, /^hello spam0/);
      assert.doesNotMatch(body.stdout, /Subject/);
      assert.equal((await ctl(d, ["queue", "cat", one!.id, "--headers", "--body"])).code, 2);
      assert.equal((await ctl(d, ["queue", "cat", "01ARZ3NDEKTSV4RRFFQ69G5FAV"])).code, 1);
    });

    await t.step("hold and release by selector, with a dry-run count first", async () => {
      const dry = await ctl(d, ["queue", "hold", "--from", "*@spam.test", "--dry-run"]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /3 message\(s\) match; nothing changed \(dry run\)/);
      assert.equal((await listed(d, ["--status", "frozen"])).length, 0);
      const held = await ctlJson(d, ["queue", "hold", "--from", "*@spam.test"]);
      assert.deepEqual(held, { action: "hold", matched: 3, changed: 3, dryRun: false });
      assert.equal((await listed(d, ["--status", "frozen"])).length, 3);
      const released = await ctl(d, ["queue", "release", "--status", "frozen", "--older-than", "1s"]);
      assert.match(released.stdout, /3 of 3 matching message\(s\) released/);
      assert.equal((await listed(d, ["--status", "frozen"])).length, 0);
      assert.equal((await ctl(d, ["queue", "hold"])).code, 2, "no selector is a usage error");
    });

    await t.step("retry by --to, and delete with ids on stdin (postsuper -d -)", async () => {
      assert.deepEqual(await ctlJson(d, ["queue", "retry", "--to", "*@other.test"]), {
        action: "retry",
        matched: 2,
        changed: 2,
        dryRun: false,
      });
      const spam = await listed(d, ["--from", "x@spam.test"]);
      const ids = spam.slice(0, 2).map((m) => m.id).join("\n") + "\n";
      const refused = await ctl(d, ["queue", "delete", "-"], { stdin: ids });
      assert.equal(refused.code, 2, "ids on stdin need --yes");
      const del = await ctl(d, ["queue", "delete", "-", "--yes"], { stdin: ids });
      assert.equal(del.code, 0, del.stderr);
      assert.match(del.stdout, /2 of 2 matching message\(s\) deleted/);
      assert.equal((await listed(d, ["--from", "x@spam.test"])).length, 1);
      const ask = await ctl(d, ["queue", "delete", "--from", "x@spam.test"], { stdin: "n\n" });
      assert.equal(ask.code, 1);
      assert.match(ask.stderr, /1 message\(s\) match.*Delete them\? \[y\/N\]/);
      assert.equal((await listed(d, ["--from", "x@spam.test"])).length, 1, "kept after no");
    });

    let bounced = "";
    await t.step("bounce --reason: the reason is the DSN's diagnostic", async () => {
      const [victim] = await listed(d, ["--to", "b0@other.test"]);
      bounced = victim!.id;
      const r = await ctl(d, ["queue", "bounce", "--to", "b0@other.test", "--reason", "Cleared by ops ticket 42"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /1 of 1 matching message\(s\) bounced/);
      const dsn = await waitFor("the DSN", async () => (await listed(d)).find((m) => m.sender === ""));
      const text = (await ctl(d, ["queue", "cat", dsn.id])).stdout;
      assert.match(text, /Diagnostic-Code: smtp; 550 5\.0\.0 Cleared by ops ticket 42/);
    });

    await t.step("message history reads the audit log after the message left the queue", async () => {
      const h = await waitFor("audit lines", async () => {
        const r = await ctl(d, ["message", "history", bounced, "--json"]);
        return r.code === 0 && JSON.parse(r.stdout) as { events: { type: string; outcome: string; reply: string }[] };
      });
      assert.ok(h.events.some((e) => e.type === "delivery" && e.outcome === "deferred"), "the attempt");
      assert.ok(h.events.some((e) => e.outcome === "failed" && /Cleared by ops ticket 42/.test(e.reply)), "the bounce");
      const text = await ctl(d, ["message", "history", bounced]);
      assert.match(text.stdout, /event\(s\) in 1 audit file\(s\)/);
      assert.match(text.stdout, /deferred/);
      assert.equal((await ctl(d, ["message", "history", "01ARZ3NDEKTSV4RRFFQ69G5FAV"])).code, 1);
    });
  } finally {
    await d.stop();
    await d.cleanup();
  }
});

Deno.test("smtp connections shows HELO and TLS; smtp kill ends a session; trace smtp streams it", async (t) => {
  const sink = await startFaultSink();
  const d = await startDaemon({
    logLevel: "info",
    toml: `[delivery]\nenabled = true\n[delivery.domains."dest.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
  });
  try {
    await t.step("trace smtp --peer streams the conversation of a session", async () => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...taskPermissions("ctl"),
          `${REPO}ctl.ts`,
          "--socket",
          socketOf(d),
          "trace",
          "smtp",
          "--peer",
          "127.0.0.1",
          "--json",
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const err = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      assert.match((await err.read()).value ?? "", /tracing SMTP with 127\.0\.0\.1/);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(
        (await sendMessage(d.port, "a@sender.test", ["b@dest.test"], msg("traced"), "tracer.test")).code,
        250,
      );
      let seen = "";
      // Inbound (our listener) and outbound (delivery to the sink) conversations both come from 127.0.0.1.
      // Done once the sink answered the message data (a 250 after its 354), without waiting for the pooled QUIT.
      while (
        !/"side":"client","direction":"in"[^\n]*"line":"354[^\n]*\n[^]*"side":"client","direction":"in"[^\n]*"line":"250/
          .test(seen)
      ) {
        const next = await lines.read();
        if (next.done) break;
        seen += next.value;
      }
      const events = seen.trim().split("\n").map((l) =>
        JSON.parse(l) as { direction: string; line: string; side: string }
      );
      assert.ok(events.some((e) => e.direction === "in" && e.line === "EHLO tracer.test" && e.side === "server"));
      assert.ok(events.some((e) => e.direction === "out" && /^220 /.test(e.line)), "the greeting");
      assert.ok(
        events.some((e) => e.side === "client" && e.direction === "out" && /^MAIL FROM:<a@sender\.test>/.test(e.line)),
      );
      assert.ok(events.some((e) => e.side === "client" && e.direction === "in" && /^250 /.test(e.line)));
      assert.ok(!events.some((e) => e.side === "client" && /hello traced/.test(e.line)), "no message data");
      child.kill("SIGINT");
      assert.equal((await child.status).code, 0);
      await lines.cancel();
      await err.cancel();
    });

    await t.step("connections and kill", async () => {
      const c = await SmtpClient.connect(d.port);
      try {
        await c.reply();
        await c.cmd("EHLO client.example");
        const { sessions } = await ctlJson<{ sessions: { id: string; helo?: string; tls: boolean }[] }>(d, [
          "smtp",
          "connections",
        ]);
        const s = sessions.find((x) => x.helo === "client.example");
        assert.ok(s, JSON.stringify(sessions));
        assert.equal(s.tls, false);
        const text = await ctl(d, ["smtp", "connections"]);
        assert.match(text.stdout, /HELO/);
        assert.match(text.stdout, /client\.example/);
        const kill = await ctl(d, ["smtp", "kill", s.id]);
        assert.equal(kill.code, 0, kill.stderr);
        assert.match(kill.stdout, new RegExp(`session ${s.id} ended`));
        const r = await c.reply();
        assert.equal(r.code, 421);
        assert.ok(await c.closedByServer());
        assert.equal((await ctl(d, ["smtp", "kill", s.id])).code, 1, "gone");
      } finally {
        c.close();
      }
    });
  } finally {
    await d.stop();
    await d.cleanup();
    await sink.stop();
  }
});
