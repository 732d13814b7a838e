/** Config hot reload: valid changes apply without a restart, invalid ones are logged and ignored. */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/daemon.ts";
import { ctlJson } from "../../testing/ctl.ts";
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

Deno.test("a save by rename (sed -i) is applied, again and again; reload-config reports it after the watcher", async () => {
  await using d = await startDaemon({
    toml: `[relay]\nlocal_domains = ["local.test"]\nrelay_networks = ["127.0.0.0/8"]\n`,
    logLevel: "info",
  });
  assert.equal(await rcpt(d.port, "x@elsewhere.test"), 250, "127.0.0.1 may relay");
  const sed = async (expr: string) => {
    const r = await new Deno.Command("sed", { args: ["-i", expr, d.configPath] }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  };
  const reloads = () => d.logs.filter((l) => l.includes("config reloaded")).length;
  const waitReloads = async (n: number) => {
    const end = Date.now() + 10_000;
    while (reloads() < n && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.equal(reloads(), n, "the watcher reloaded");
  };
  await sed('s|relay_networks = \\["127.0.0.0/8"\\]|relay_networks = []|');
  await waitReloads(1);
  assert.equal(await rcpt(d.port, "x@elsewhere.test"), 554, "an outside address no longer relays");
  await sed('s|relay_networks = \\[\\]|relay_networks = ["127.0.0.0/8"]|'); // the watch survived the rename
  await waitReloads(2);
  assert.equal(await rcpt(d.port, "x@elsewhere.test"), 250);

  // A restart-bound setting and a runtime one, applied by the watcher before the command runs.
  await sed('s|relay_networks = \\["127.0.0.0/8"\\]|relay_networks = []\\n[smtp]\\nmax_recipients = 7|');
  await waitReloads(3);
  const report = await ctlJson<{ changed: string[]; applied: string[]; needsRestart: string[] }>(d, [
    "system",
    "reload-config",
  ]);
  assert.deepEqual(report.changed, [], "the watcher applied it first");
  assert.ok(report.applied.includes("relay"), `applied: ${report.applied}`);
  assert.deepEqual(report.needsRestart, ["smtp.max_recipients"]);
  assert.equal(await rcpt(d.port, "x@elsewhere.test"), 554);
});
