/**
 * The audit log: JSON lines, daily rotation with retention, and writes that never
 * throw or block even when the target cannot be written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createAuditLog } from "../../src/observability/audit.ts";

Deno.test("writes one JSON line per event with a timestamp", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const audit = createAuditLog({ target: join(dir, "audit.log") });
    audit.write({ type: "delivery", id: "A", outcome: "delivered" });
    audit.write({ type: "control", command: "queue.delete" });
    await audit.close();
    const lines = (await Deno.readTextFile(join(dir, "audit.log"))).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    assert.equal(lines[0].type, "delivery");
    assert.equal(lines[1].command, "queue.delete");
    assert.ok(!Number.isNaN(Date.parse(lines[0].ts)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rotates to a dated file on the first write of a new day and prunes old ones", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "audit.log");
  try {
    let now = Date.parse("2026-11-20T23:59:00Z");
    await Deno.writeTextFile(`${path}.2026-10-01`, "{}\n"); // older than retain_days
    await Deno.writeTextFile(`${path}.2026-11-19`, "{}\n");
    await Deno.writeTextFile(path, '{"old":true}\n');
    await Deno.utime(path, now / 1000, now / 1000);
    now = Date.parse("2026-11-21T00:00:05Z");
    const audit = createAuditLog({ target: path, retainDays: 30, now: () => now });
    audit.write({ n: 1 });
    await audit.flush();
    assert.equal((await Deno.readTextFile(`${path}.2026-11-20`)).trim(), '{"old":true}');
    assert.equal(JSON.parse(await Deno.readTextFile(path)).n, 1);
    assert.equal(await Deno.stat(`${path}.2026-10-01`).catch(() => null), null, "pruned after 30 days");
    assert.ok(await Deno.stat(`${path}.2026-11-19`), "recent file kept");
    // Next day, same process.
    now = Date.parse("2026-11-22T00:00:01Z");
    await Deno.utime(path, Date.parse("2026-11-21T12:00:00Z") / 1000, Date.parse("2026-11-21T12:00:00Z") / 1000);
    audit.write({ n: 2 });
    await audit.close();
    assert.equal(JSON.parse(await Deno.readTextFile(`${path}.2026-11-21`)).n, 1);
    assert.equal(JSON.parse(await Deno.readTextFile(path)).n, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a target that fails every write (/dev/full) drops lines, counts them, and never throws", async () => {
  const drops: number[] = [];
  const audit = createAuditLog({ target: "/dev/full", onDrop: (n) => drops.push(n) });
  for (let i = 0; i < 1000; i++) audit.write({ i });
  await audit.flush();
  audit.write({ after: true });
  await audit.close();
  assert.equal(audit.dropped, 1001);
  assert.equal(drops.reduce((a, b) => a + b, 0), 1001);
  assert.ok((await Deno.stat("/dev/full")).isCharDevice, "a device is never rotated or replaced");
});

Deno.test("write() returns at once even while the target is failing, and the buffer is bounded", () => {
  const audit = createAuditLog({ target: "/nonexistent-dir/audit.log", maxBufferedLines: 10 });
  for (let i = 0; i < 100; i++) audit.write({ i });
  assert.ok(audit.dropped >= 100 - 10 - 1, "lines over the buffer bound are dropped, not queued");
  return audit.close();
});

Deno.test("the log resumes when the target becomes writable again", async () => {
  const dir = await Deno.makeTempDir();
  const sub = join(dir, "missing");
  try {
    const audit = createAuditLog({ target: join(sub, "audit.log") });
    audit.write({ n: 1 });
    await audit.flush();
    assert.equal(audit.dropped, 1);
    await Deno.mkdir(sub);
    audit.write({ n: 2 });
    await audit.close();
    assert.equal(JSON.parse(await Deno.readTextFile(join(sub, "audit.log"))).n, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
