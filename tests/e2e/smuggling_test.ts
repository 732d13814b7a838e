/**
 * SMTP smuggling over a real socket: no bare CR/LF end-of-data variant may end DATA
 * or split one message into two. Each attempt pipelines a fake end-of-data plus a
 * second transaction; the server must see one DATA only, ended by the real CRLF.CRLF.
 */
import assert from "node:assert/strict";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";
import { spooledIds, spooledMessages } from "../../testing/spool_reader.ts";

const VARIANTS = ["\n.\n", "\n.\r\n", "\r.\r", "\r\n.\n", "\n.\r", "\r.\r\n", "\r\n.\r", "\r\n\x00.\r\n"];

async function spoolIds(d: TestDaemon): Promise<string[]> {
  return await spooledIds(d.dataDir);
}

async function attempt(port: number, seq: string) {
  const c = await SmtpClient.connect(port);
  await c.reply();
  await c.cmd("EHLO smuggler.test");
  await c.cmd("MAIL FROM:<a@example.com>");
  await c.cmd("RCPT TO:<b@example.net>");
  assert.equal((await c.cmd("DATA")).code, 354);
  // Everything up to the final CRLF.CRLF is one message body.
  await c.send(
    `Subject: outer\r\n\r\nhello${seq}MAIL FROM:<admin@example.com>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n`,
  );
  const replies = [await c.reply()];
  // Nothing else may be answered: a smuggled transaction would produce more replies.
  const extra = await c.cmd("NOOP");
  c.close();
  return { replies, extra };
}

Deno.test("no bare CR/LF end-of-data variant ends DATA or splits a message (reject mode)", async () => {
  await using d = await startDaemon();
  for (const seq of VARIANTS) {
    const { replies, extra } = await attempt(d.port, seq);
    assert.equal(replies.length, 1);
    assert.equal(replies[0]?.code, 554, `${JSON.stringify(seq)}: ${replies[0]?.text}`);
    assert.equal(extra.code, 250, `${JSON.stringify(seq)}: a second reply leaked: ${extra.text}`);
  }
  assert.deepEqual(await spoolIds(d), [], "nothing may be queued");
});

Deno.test("in normalize mode each smuggling attempt is stored as exactly one message", async () => {
  await using d = await startDaemon({ toml: `[smtp]\nbare_newline = "normalize"\n` });
  for (const seq of VARIANTS.filter((v) => !v.includes("\x00"))) {
    const { replies, extra } = await attempt(d.port, seq);
    assert.equal(replies[0]?.code, 250, `${JSON.stringify(seq)}: ${replies[0]?.text}`);
    assert.equal(extra.code, 250);
  }
  const ids = await spoolIds(d);
  assert.equal(ids.length, VARIANTS.length - 1);
  for (const id of ids) {
    const text = (await spooledMessages(d.dataDir)).get(id)!;
    assert.match(text, /Subject: outer/);
    assert.match(text, /Subject: smuggled/, "the smuggled part stays inside the one message");
    assert.ok(!/(^|[^\r])\n|\r(?!\n)/.test(text), "only CRLF line endings are stored");
  }
});
