/**
 * Spool segments: small messages share an append-only file made durable by one
 * group fdatasync; large ones spill to their own file; torn frames are ignored on
 * restart and emptied segments are removed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSpool } from "../../src/spool/mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "empath-seg-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const segFiles = async (dir: string) =>
  (await Array.fromAsync(Deno.readDir(join(dir, "seg")))).filter((e) => e.name.endsWith(".seg")).map((e) => e.name);

async function streamText(s: import("node:stream").Readable) {
  const parts: Uint8Array[] = [];
  for await (const c of s) parts.push(c as Uint8Array);
  return dec.decode(new Uint8Array(parts.flatMap((p) => [...p])));
}

Deno.test("concurrent small messages share one segment and each reads back exactly", () =>
  withDir(async (dir) => {
    const spool = await openSpool(dir);
    const bodies = Array.from({ length: 50 }, (_, i) => `Subject: ${i}\r\n\r\n${"x".repeat(i * 37)}\r\n`);
    const writers = await Promise.all(bodies.map(() => spool.create()));
    await Promise.all(writers.map(async (w, i) => {
      const body = bodies[i];
      assert.ok(body !== undefined);
      await w.write(enc.encode(body.slice(0, 5)));
      await w.write(enc.encode(body.slice(5)));
      await w.commit();
    }));
    assert.equal((await segFiles(dir)).length, 1);
    for (const [i, w] of writers.entries()) {
      const body = bodies[i];
      assert.ok(body !== undefined);
      assert.equal(dec.decode(await spool.readAll(w.id)), body);
      assert.equal(await spool.size(w.id), body.length);
      assert.equal(await streamText(spool.readStream(w.id)), body);
      assert.equal(await streamText(await spool.openStream(w.id, 3)), body.slice(3));
    }
    // After a restart the same messages are found by scanning the segment.
    const again = await openSpool(dir);
    assert.deepEqual((await Array.fromAsync(again.list())).sort(), writers.map((w) => w.id).sort());
    const seventh = writers[7];
    assert.ok(seventh);
    assert.equal(dec.decode(await again.readAll(seventh.id)), bodies[7]);
  }));

Deno.test("a message over the in-memory limit gets its own file", () =>
  withDir(async (dir) => {
    const spool = await openSpool(dir);
    const w = await spool.create();
    const chunk = new Uint8Array(100 * 1024).fill(0x61);
    for (let i = 0; i < 5; i++) await w.write(chunk);
    await w.commit();
    assert.equal((await Deno.stat(spool.pathOf(w.id))).size, 500 * 1024);
    assert.equal(spool.locate(w.id).path, spool.pathOf(w.id));
    assert.equal(await spool.size(w.id), 500 * 1024);
    assert.equal((await spool.readAll(w.id)).length, 500 * 1024);
  }));

Deno.test("a torn frame at the end of a segment (crash mid-append) is ignored on restart", () =>
  withDir(async (dir) => {
    const spool = await openSpool(dir);
    const w = await spool.create();
    await w.write(enc.encode("Subject: kept\r\n\r\nbody\r\n"));
    await w.commit();
    const [seg] = await segFiles(dir);
    assert.ok(seg !== undefined, "the message went to a segment");
    const f = await Deno.open(join(dir, "seg", seg), { append: true });
    await f.write(enc.encode("EMPATH1 01ARZ3NDEKTSV4RRFFQ69G5FAV 5000\nSubject: half"));
    f.close();
    const again = await openSpool(dir);
    assert.deepEqual(await Array.fromAsync(again.list()), [w.id]);
    assert.equal(dec.decode(await again.readAll(w.id)), "Subject: kept\r\n\r\nbody\r\n");
    // New messages go to a new segment, never after the torn frame.
    const n = await again.create();
    await n.write(enc.encode("Subject: new\r\n\r\n"));
    await n.commit();
    assert.equal((await segFiles(dir)).length, 2);
    const third = await openSpool(dir);
    assert.equal(dec.decode(await third.readAll(n.id)), "Subject: new\r\n\r\n");
  }));

Deno.test("a sealed segment is removed when its last message is deleted", () =>
  withDir(async (dir) => {
    const first = await openSpool(dir);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const w = await first.create();
      await w.write(enc.encode(`Subject: ${i}\r\n\r\n`));
      await w.commit();
      ids.push(w.id);
    }
    const [id0, id1, id2] = ids;
    assert.ok(id0 !== undefined && id1 !== undefined && id2 !== undefined);
    const spool = await openSpool(dir); // the old segment is sealed now
    assert.equal((await segFiles(dir)).length, 1);
    await spool.delete(id0);
    await spool.delete(id1);
    assert.equal((await segFiles(dir)).length, 1, "still holds one message");
    assert.equal(await spool.exists(id1), false);
    await spool.delete(id2);
    assert.equal((await segFiles(dir)).length, 0);
    await spool.delete(id2); // deleting twice is not an error
  }));

Deno.test("an aborted small message leaves nothing behind", () =>
  withDir(async (dir) => {
    const spool = await openSpool(dir);
    const w = await spool.create();
    await w.write(enc.encode("Subject: no\r\n"));
    assert.ok(spool.receiving.has(w.id));
    await w.abort();
    assert.equal(spool.receiving.has(w.id), false);
    assert.deepEqual(await Array.fromAsync(spool.list()), []);
  }));

Deno.test("a deleted message stays deleted after a restart, though its segment lives on", () =>
  withDir(async (dir) => {
    const spool = await openSpool(dir);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const w = await spool.create();
      await w.write(enc.encode(`Subject: ${i}\r\n\r\n`));
      await w.commit();
      ids.push(w.id);
    }
    const [id0, id1, id2] = ids;
    assert.ok(id0 !== undefined && id1 !== undefined && id2 !== undefined);
    await spool.delete(id1);
    const again = await openSpool(dir);
    assert.deepEqual((await Array.fromAsync(again.list())).sort(), [id0, id2].sort());
    assert.equal(dec.decode(await again.readAll(id2)), "Subject: 2\r\n\r\n");
  }));

Deno.test("stage(): a small message is readable at once and durable when `durable` resolves; a large one as commit()", () =>
  withDir(async (dir) => {
    const spool = await openSpool(dir);
    const small = await spool.create();
    await small.write(enc.encode("Subject: staged\r\n\r\nbody\r\n"));
    const { durable } = small.stage!();
    assert.ok(spool.receiving.has(small.id), "still being received until it is durable");
    assert.equal(dec.decode(await spool.readAll(small.id)), "Subject: staged\r\n\r\nbody\r\n");
    await durable;
    assert.equal(spool.receiving.has(small.id), false);
    const large = await spool.create();
    await large.write(new Uint8Array(300 * 1024).fill(0x62));
    await large.stage!().durable;
    assert.equal((await Deno.stat(spool.pathOf(large.id))).size, 300 * 1024);
    const again = await openSpool(dir);
    assert.deepEqual((await Array.fromAsync(again.list())).sort(), [small.id, large.id].sort());
  }));
