/** Config hot reload: valid changes apply without a restart, invalid ones are logged and ignored. */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/daemon.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";

async function rcpt(port: number, to: string): Promise<number> {
  const c = await SmtpClient.connect(port);
  try {
    await c.reply();
    await c.cmd("EHLO reload.test");
    await c.cmd("MAIL FROM:<a@remote.test>");
    return (await c.cmd(`RCPT TO:<${to}>`)).code;
  } finally {
    c.close();
  }
}

Deno.test("editing config.toml changes the relay policy at once; a broken edit keeps the running config", async () => {
  await using d = await startDaemon({ toml: `[relay]\nlocal_domains = ["local.test"]\nrelay_networks = []\n` });
  assert.equal(await rcpt(d.port, "x@elsewhere.test"), 554);
  const original = await Deno.readTextFile(d.configPath);
  await Deno.writeTextFile(d.configPath, original.replace("relay_networks = []", 'relay_networks = ["127.0.0.0/8"]'));
  assert.match(await d.waitForLog(/config reloaded/), /"changed":"relay","restart":"nothing"/);
  assert.equal(await rcpt(d.port, "x@elsewhere.test"), 250);

  await Deno.writeTextFile(d.configPath, original.replace("relay_networks = []", 'relay_networks = ["nonsense"]'));
  assert.match(await d.waitForLog(/config reload rejected/), /relay\.relay_networks\[0\] = \\"nonsense\\"/);
  assert.equal(await rcpt(d.port, "x@elsewhere.test"), 250, "the last good config stays in force");
});
