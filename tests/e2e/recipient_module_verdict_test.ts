/**
 * Recipient validation takes a module's verdict (issue #13): a module that answers
 * `{ action: "accept" }` for a recipient at a local domain vouches that it exists; a module
 * that says nothing leaves the recipient to the table, the probe or the safe default (550 5.1.1).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startDaemon } from "../../testing/daemon.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";

const FIXTURES = join(new URL(".", import.meta.url).pathname, "../modules/fixtures");

Deno.test("a module's explicit accept makes a local recipient known; silence leaves it to the default", async () => {
  await using d = await startDaemon({
    hardeningDefaults: true,
    toml: `[relay]\nlocal_domains = ["local.test"]\n` +
      `[[modules]]\npath = "${FIXTURES}/directory.ts"\noptions = { users = ["vip@local.test"] }\n`,
  });
  using c = await SmtpClient.connect(d.port);
  await c.reply();
  await c.cmd("EHLO client.test");
  assert.equal((await c.cmd("MAIL FROM:<a@example.org>")).code, 250);
  assert.equal((await c.cmd("RCPT TO:<vip@local.test>")).code, 250, "vouched for by the module");
  assert.equal((await c.cmd("RCPT TO:<VIP@Local.Test>")).code, 250, "the module sees the canonical domain");
  assert.equal(
    (await c.cmd("RCPT TO:<stranger@local.test>")).text,
    "550 5.1.1 <stranger@local.test>: Recipient address rejected: User unknown in local recipient table",
  );
  assert.equal((await c.cmd("RCPT TO:<postmaster@local.test>")).code, 250, "postmaster always exists");
  await c.cmd("QUIT");
});
