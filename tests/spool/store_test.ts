import assert from "node:assert/strict";
import { join } from "node:path";
import { isUlid, openSpool, type Spool, SpoolError, ulid, ulidTime } from "../../src/spool/mod.ts";

async function withSpool(fn: (spool: Spool, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "empath-spool-" });
  try {
    await fn(await openSpool(dir), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("committed data reads back byte for byte", () =>
  withSpool(async (spool) => {
    const w = await spool.create();
    const body = "Subject: x\r\n\r\n" + "line\r\n".repeat(50_000);
    for (let i = 0; i < body.length; i += 7000) await w.write(bytes(body.slice(i, i + 7000)));
    await w.commit();
    assert.equal(new TextDecoder().decode(await spool.readAll(w.id)), body);
    assert.equal(await spool.size(w.id), body.length);
    const streamed: Uint8Array[] = [];
    for await (const chunk of await spool.openStream(w.id)) streamed.push(chunk);
    assert.equal(Buffer.concat(streamed).toString(), body);
  }));

Deno.test("a write in progress is marked as receiving and aborting removes it", () =>
  withSpool(async (spool, dir) => {
    const w = await spool.create();
    await w.write(bytes("partial"));
    assert.ok(spool.receiving.has(w.id));
    await w.abort();
    assert.equal(spool.receiving.has(w.id), false);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(join(dir, "data"))), []);
  }));

Deno.test("a commit ends the receiving state", () =>
  withSpool(async (spool) => {
    const w = await spool.create();
    await w.write(bytes("x\r\n"));
    await w.commit();
    assert.equal(spool.receiving.has(w.id), false);
    assert.ok(await spool.exists(w.id));
  }));

Deno.test("leftovers in the legacy tmp directory are cleaned up and reported", () =>
  withSpool(async (spool, dir) => {
    await Deno.writeTextFile(join(dir, "tmp", "01JXXXXXXXXXXXXXXXXXXXXXXX"), "old partial");
    assert.deepEqual(await spool.cleanTemp(), ["01JXXXXXXXXXXXXXXXXXXXXXXX"]);
  }));

Deno.test("many concurrent commits are all listed", () =>
  withSpool(async (spool) => {
    const ids = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const w = await spool.create();
      await w.write(bytes(`message ${i}\r\n`));
      await w.commit();
      return w.id;
    }));
    assert.deepEqual((await Array.fromAsync(spool.list())).sort(), ids.sort());
  }));

Deno.test("ids that are not ULIDs are refused (no path tricks)", () =>
  withSpool(async (spool) => {
    assert.throws(() => spool.pathOf("../../etc/passwd"), SpoolError);
    await assert.rejects(() => spool.create("../x"), SpoolError);
  }));

Deno.test("ULIDs are valid, unique and sort in creation order", () => {
  const ids = Array.from({ length: 1000 }, () => ulid());
  assert.ok(ids.every(isUlid));
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
  const t = Date.now();
  assert.ok(Math.abs(ulidTime(ulid(t + 10_000)) - (t + 10_000)) < 2);
});

Deno.test("deleting a missing message is not an error", () =>
  withSpool(async (spool) => {
    await spool.delete(ulid());
  }));
