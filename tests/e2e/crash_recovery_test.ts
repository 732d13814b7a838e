/**
 * SIGKILL in the middle of a load, then restart: every message that got 250 is in
 * the spool and the queue store; partial writes are cleaned up; nothing else remains.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openFileStore, openKvStore } from "../../src/queue/mod.ts";
import { restartDaemon, startDaemon } from "../../testing/daemon.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";
import { spooledIds } from "../../testing/spool_reader.ts";

async function sender(port: number, accepted: string[], stop: { now: boolean }) {
  while (!stop.now) {
    let c: SmtpClient | undefined;
    try {
      c = await SmtpClient.connect(port);
      await c.reply();
      await c.cmd("EHLO load.test");
      while (!stop.now) {
        if ((await c.cmd("MAIL FROM:<a@example.com>")).code !== 250) break;
        await c.cmd("RCPT TO:<b@example.net>");
        await c.cmd("DATA");
        await c.send("Subject: load\r\n\r\n" + ("0123456789abcdef".repeat(4) + "\r\n").repeat(62));
        const r = await c.cmd(".");
        const id = /queued as (\S+)/.exec(r.text)?.[1];
        if (r.code === 250 && id) accepted.push(id);
      }
    } catch {
      // The daemon was killed: the connection dies. Anything without a 250 is not ours to keep.
      return;
    } finally {
      c?.close();
    }
  }
}

for (const backend of ["kv", "file"] as const) {
  Deno.test(`every acknowledged message survives SIGKILL under load (${backend})`, async () => {
    let d = await startDaemon({ toml: `[queue]\nbackend = "${backend}"\n` });
    try {
      const accepted: string[] = [];
      const stop = { now: false };
      const senders = Array.from({ length: 8 }, () => sender(d.port, accepted, stop));
      const deadline = Date.now() + 30_000;
      while (accepted.length < 150) {
        assert.ok(Date.now() < deadline, `only ${accepted.length} messages accepted before the deadline`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await d.kill(); // in the middle of the load
      stop.now = true;
      await Promise.all(senders);

      d = await restartDaemon(d);
      const recovered = await d.waitForLog(/queue recovered/);
      assert.equal(await d.stop(), 0);

      const store = backend === "kv"
        ? await openKvStore(join(d.dataDir, "queue.kv"))
        : await openFileStore(join(d.dataDir, "queue"));
      const spool = new Set(await spooledIds(d.dataDir));
      const records = new Set((await Array.fromAsync(store.list())).map((r) => r.id));
      await store.close();
      for (const id of accepted) {
        assert.ok(spool.has(id), `acknowledged ${id} missing from spool`);
        assert.ok(records.has(id), `acknowledged ${id} missing from queue store`);
      }
      // Spool and store agree exactly: orphans were removed, no partial writes remain.
      assert.deepEqual([...spool].sort(), [...records].sort());
      assert.deepEqual(await Array.fromAsync(Deno.readDir(join(d.dataDir, "spool", "tmp"))), []);
      const total = JSON.parse(recovered).properties.total;
      assert.ok(total >= accepted.length, `recovered ${total} < accepted ${accepted.length}`);
    } finally {
      await d.kill();
      await d.cleanup();
    }
  });
}
