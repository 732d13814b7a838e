/**
 * Clients that drip bytes are cut by per-request deadlines (smtp.timeouts.command from a
 * command's first byte; smtp.timeouts.data_block plus one second per smtp.min_data_rate
 * bytes for message data), not kept alive by every byte; well-behaved slow clients are not.
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/daemon.ts";
import { sendMessage, SmtpClient } from "../../testing/smtp_client.ts";

const TOML = `[smtp]\nmin_data_rate = 100\n[smtp.timeouts]\ncommand = "2s"\ndata_block = "2s"\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `text` one byte every `everyMs` until the server replies or the text runs out. */
async function drip(c: SmtpClient, text: string, everyMs: number) {
  const pending = c.reply(30_000);
  let done = false;
  pending.finally(() => done = true).catch(() => {});
  for (const ch of text) {
    if (done) break;
    await c.send(ch).catch(() => {});
    await sleep(everyMs);
  }
  return await pending;
}

Deno.test("a client dripping a command or message data is cut with 421 4.4.2; patient clients are not", async () => {
  await using d = await startDaemon({ toml: TOML });
  // A command line dripped a byte every 250 ms (would take 20 s) is cut at the 2 s deadline.
  const cmd = await SmtpClient.connect(d.port);
  await cmd.reply();
  const started = Date.now();
  const cut = await drip(cmd, "EHLO " + "x".repeat(75) + "\r\n", 250);
  assert.equal(cut.code, 421);
  assert.match(cut.text, /4\.4\.2 Command not completed in time/);
  assert.ok(Date.now() - started < 10_000, "cut long before the drip would have ended");
  assert.ok(await cmd.closedByServer());
  cmd.close();

  // Message data dripped at ~4 bytes/s, far below min_data_rate, is cut too.
  const data = await SmtpClient.connect(d.port);
  await data.reply();
  await data.cmd("EHLO slow.test");
  assert.equal((await data.cmd("MAIL FROM:<a@example.com>")).code, 250);
  assert.equal((await data.cmd("RCPT TO:<b@localhost>")).code, 250);
  assert.equal((await data.cmd("DATA")).code, 354);
  const slow = await drip(data, "Subject: slow\r\n\r\n" + "y".repeat(200) + "\r\n.\r\n", 250);
  assert.equal(slow.code, 421);
  assert.match(slow.text, /4\.4\.2 Message data arriving too slowly/);
  data.close();

  // Patient but well-formed: pauses between complete commands, a command typed over 1 s,
  // then a message at normal speed: all accepted.
  const ok = await SmtpClient.connect(d.port);
  await ok.reply();
  assert.equal((await ok.cmd("EHLO patient.test")).code, 250);
  await sleep(1500);
  const noop = await drip(ok, "NOOP\r\n", 150);
  assert.equal(noop.code, 250);
  await sleep(1500);
  assert.equal((await ok.cmd("MAIL FROM:<a@example.com>")).code, 250);
  assert.equal((await ok.cmd("RCPT TO:<b@localhost>")).code, 250);
  assert.equal((await ok.cmd("DATA")).code, 354);
  await ok.send("Subject: fine\r\n\r\n" + ("z".repeat(70) + "\r\n").repeat(70));
  assert.equal((await ok.cmd(".")).code, 250);
  await ok.cmd("QUIT");
  ok.close();

  // The daemon keeps serving.
  assert.equal(
    (await sendMessage(d.port, "a@example.com", ["b@localhost"], "Subject: after\r\n\r\nx\r\n")).code,
    250,
  );
  assert.ok(d.logs.some((l) => /too slow/.test(l)));
});
