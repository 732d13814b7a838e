/**
 * Priority from the outside: a listener's configured level lands on the queue record,
 * `empathctl queue list --priority` filters by it, `queue set-priority` changes it
 * (by id and by domain), a module's `ctx.priority` beats the listener's level, and a bad
 * level is a usage error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ctl, ctlJson, REPO, sendMessage, startDaemon } from "../../testing/mod.ts";

const MSG = "Subject: prio\r\n\r\nhello\r\n";
type Rows = { messages: { id: string; priority: string }[] };

Deno.test("empathctl queue list --priority and queue set-priority", async () => {
  const d = await startDaemon({
    defaultListener: false,
    toml: `[[listeners]]\nname = "mx"\naddress = "127.0.0.1:0"\n` +
      `[[listeners]]\nname = "bulk"\naddress = "127.0.0.1:0"\npriority = "low"\n` +
      `[[modules]]\npath = "${join(REPO, "tests/modules/fixtures/prioritizer.ts")}"\n`,
  });
  try {
    assert.equal((await sendMessage(d.portOf("bulk"), "a@example.org", ["x@one.test"], MSG)).code, 250);
    assert.equal((await sendMessage(d.portOf("mx"), "a@example.org", ["y@two.test"], MSG)).code, 250);
    const low = await ctlJson<Rows>(d, ["queue", "list", "--priority", "low"]);
    assert.equal(low.messages.length, 1);
    const id = low.messages[0]!.id;
    assert.equal((await ctlJson<Rows>(d, ["queue", "list", "--priority", "normal"])).messages.length, 1);
    assert.deepEqual(await ctlJson(d, ["queue", "set-priority", id, "critical"]), { changed: 1 });
    assert.deepEqual(await ctlJson(d, ["queue", "set-priority", "--domain", "two.test", "high"]), { changed: 1 });
    const all = await ctlJson<Rows>(d, ["queue", "list"]);
    assert.deepEqual(all.messages.map((m) => m.priority).sort(), ["critical", "high"]);
    assert.equal((await sendMessage(d.portOf("bulk"), "urgent-a@example.org", ["z@three.test"], MSG)).code, 250);
    const critical = await ctlJson<Rows>(d, ["queue", "list", "--priority", "critical"]);
    assert.equal(critical.messages.length, 2, "set by the operator, and by the module over the listener's low");
    const bad = await ctl(d, ["queue", "set-priority", id, "urgent"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expected one of critical, high, normal, low/);
  } finally {
    await d.stop();
    await d.cleanup();
  }
});
