/**
 * Property test against a live daemon: random and malformed SMTP command sequences,
 * odd line lengths, arbitrary bytes and pipelined batches never crash the server,
 * every reply is a well-formed RFC 5321 reply line, and the server keeps serving.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { startDaemon } from "../../testing/daemon.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";

const REPLY = /^[2-5]\d\d[ -][\x20-\x7e]*$/;

const command = fc.oneof(
  fc.constantFrom(
    "EHLO fuzz.test",
    "HELO fuzz.test",
    "MAIL FROM:<a@example.com>",
    "MAIL FROM:<>",
    "MAIL FROM:<a@example.com> SIZE=99999999999",
    "MAIL FROM:<a@example.com> BODY=8BITMIME SMTPUTF8",
    "RCPT TO:<b@localhost>",
    "RCPT TO:<b@remote.test> NOTIFY=BOGUS",
    "RCPT TO:<@a,@b:c@d>",
    "RCPT TO:<x%y@localhost>",
    "DATA",
    "BDAT 10",
    "RSET",
    "NOOP",
    "VRFY root",
    "EXPN staff",
    "HELP",
    "STARTTLS",
    "AUTH PLAIN AAAA",
    "QUIT",
    "",
    " ",
    "MAIL FROM:",
    "RCPT",
  ),
  fc.string({ maxLength: 200 }),
  fc.stringMatching(/^[A-Z]{1,8}( [ -~]{0,600})?$/),
  fc.uint8Array({ maxLength: 300 }).map((b) => new TextDecoder("latin1").decode(b).replace(/\r|\n/g, " ")),
);

Deno.test("random and malformed command sequences always get well-formed replies and never crash the server", async () => {
  await using d = await startDaemon({ toml: `[smtp]\nmax_errors = 1000\n` });
  await fc.assert(
    fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), fc.boolean(), async (cmds, pipelined) => {
      const c = await SmtpClient.connect(d.port);
      try {
        assert.equal((await c.reply()).code, 220);
        const lines: string[] = [];
        const collect = async () => {
          try {
            lines.push(...(await c.reply(3000)).lines);
          } catch {
            return false; // server closed the session (e.g. QUIT, 421) or stayed silent (DATA body)
          }
          return true;
        };
        if (pipelined) {
          await c.send(cmds.map((x) => x + "\r\n").join(""));
          for (let i = 0; i < cmds.length; i++) if (!(await collect())) break;
        } else {
          for (const x of cmds) {
            await c.send(x + "\r\n").catch(() => {});
            if (!(await collect())) break;
          }
        }
        for (const line of lines) assert.match(line, REPLY, JSON.stringify(line));
      } finally {
        c.close();
      }
    }),
    { numRuns: 40 },
  );
  // Still alive and serving.
  const ok = await SmtpClient.connect(d.port);
  assert.equal((await ok.reply()).code, 220);
  assert.equal((await ok.cmd("EHLO after.test")).code, 250);
  ok.close();
  assert.equal(await d.stop(), 0, "the daemon exits cleanly after the barrage");
});

Deno.test("the greeting comes at once by default; with greet_delay an early talker is refused", async () => {
  const readLine = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(512);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  };
  {
    await using d = await startDaemon({ logLevel: "info" });
    // No pause before the greeting (smtp-server's own is 100 ms): a client that pipelines EHLO
    // right after connecting is answered, not refused as an early talker.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
    await conn.write(new TextEncoder().encode("EHLO quick.test\r\n"));
    let text = "";
    while (!/\r\n250 /.test(text) && !/421 /.test(text)) text += await readLine(conn);
    assert.match(text, /^220 /);
    assert.doesNotMatch(text, /too soon/);
    conn.close();
  }
  {
    await using slow = await startDaemon({ toml: `[smtp]\ngreet_delay = "700ms"\n`, logLevel: "info" });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: slow.port });
    await conn.write(new TextEncoder().encode("EHLO spammer.test\r\n"));
    const text = await readLine(conn) + await readLine(conn).catch(() => "");
    assert.match(text, /421 .*You talk too soon/);
    conn.close();
    const polite = await SmtpClient.connect(slow.port);
    assert.equal((await polite.reply()).code, 220);
    assert.equal((await polite.cmd("EHLO polite.test")).code, 250);
    polite.close();
  }
});
