/**
 * A module's `data` hook on the PostgreSQL backend: the hook reads the whole body while
 * the message is still staged on the node (small, and large enough for several 256 KiB
 * chunks), its metadata and added header field are committed to the database with the
 * message, and a second connection to the database (any other node) reads them back.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openPgQueue } from "../../src/cluster/mod.ts";
import { startDaemon } from "../../testing/daemon.ts";
import { postgresAvailable, startPostgres } from "../../testing/postgres.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";
import { tempDir } from "../../testing/temp.ts";

const FIXTURES = new URL("../modules/fixtures", import.meta.url).pathname;
const ignore = !(await postgresAvailable());

Deno.test(
  { name: "cluster: a module's data hook reads the body and its changes are committed to PostgreSQL", ignore },
  async () => {
    await using pg = await startPostgres();
    await using dir = await tempDir("empath-pg-modules-");
    const out = join(dir.path, "hooks.jsonl");
    await using d = await startDaemon({
      toml: `[queue]\nbackend = "postgres"\nurl = "${pg.url}"\n` +
        `[[modules]]\npath = "${FIXTURES}/recorder.ts"\noptions = { out = "${out}", tag = "pg" }\n`,
    });
    const line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    const bodies = { small: "hello\r\n", large: line.repeat(Math.ceil(600_000 / line.length)) };
    const ids: Record<string, string> = {};
    const c = await SmtpClient.connect(d.port);
    await c.reply();
    await c.cmd("EHLO client.test");
    for (const [name, body] of Object.entries(bodies)) {
      assert.equal((await c.cmd("MAIL FROM:<alice@example.com>")).code, 250);
      assert.equal((await c.cmd("RCPT TO:<bob@mod.test>")).code, 250);
      assert.equal((await c.cmd("DATA")).code, 354);
      await c.send(`Subject: ${name}\r\n\r\n${body}`);
      const r = await c.cmd(".");
      assert.equal(r.code, 250, r.text);
      ids[name] = /queued as (\S+)/.exec(r.text)?.[1] ?? assert.fail(r.text);
    }
    await c.cmd("QUIT");
    c.close();
    assert.equal(await d.stop(), 0);

    const hooks = (await Deno.readTextFile(out)).split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const other = await openPgQueue({ url: pg.url, stagingDir: join(dir.path, "staging"), poolSize: 2 });
    try {
      for (const [name, body] of Object.entries(bodies)) {
        const id = ids[name]!;
        const seen = hooks.find((h) => h.hook === "data" && h.args?.id === id);
        assert.ok(seen, `data hook ran for ${name}`);
        const text = new TextDecoder().decode(await other.spool.readAll(id));
        const record = await other.store.get(id) ?? assert.fail(`no record ${id}`);
        const meta = record.metadata.recorder as Record<string, unknown>;
        assert.equal(meta.subject, name);
        assert.ok(Number(meta.bodyBytes) >= body.length, `${name}: hook read the whole body`);
        assert.equal(meta.tag, "pg:alice@example.com");
        assert.equal(record.size, new TextEncoder().encode(text).length, `${name}: size counts the added fields`);
        assert.match(text, /^X-Recorder-Data: added in data\r$/m, name);
        assert.ok(text.endsWith(body), `${name}: body intact in PostgreSQL`);
      }
    } finally {
      await other.store.close();
    }
  },
);
