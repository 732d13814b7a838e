/**
 * Property test against a live daemon: random and malformed SMTP command sequences,
 * odd line lengths, arbitrary bytes and pipelined batches never crash the server,
 * every reply is a well-formed RFC 5321 reply line, and the server keeps serving.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { startDaemon } from "../helpers/daemon.ts";
import { RawSmtp } from "../helpers/smtp_raw.ts";

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
  const d = await startDaemon({ toml: `[smtp]\nmax_errors = 1000\n` });
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), fc.boolean(), async (cmds, pipelined) => {
        const c = await RawSmtp.connect(d.port);
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
    const ok = await RawSmtp.connect(d.port);
    assert.equal((await ok.reply()).code, 220);
    assert.equal((await ok.cmd("EHLO after.test")).code, 250);
    ok.close();
  } finally {
    assert.equal(await d.stop(), 0, "the daemon exits cleanly after the barrage");
    await d.cleanup();
  }
});
