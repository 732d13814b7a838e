import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { RecentData } from "../../src/spool/recent_data.ts";
import { openSpool } from "../../src/spool/store.ts";

Deno.test("recent data: bounded by bytes, oldest out, delete and replace", () => {
  const recent = new RecentData(10);
  recent.put("a", [new Uint8Array(4)], 4);
  recent.put("b", [new Uint8Array(4)], 4);
  recent.put("c", [new Uint8Array(4)], 4);
  assert.equal(recent.get("a"), undefined);
  assert.ok(recent.get("b") && recent.get("c"));
  recent.put("b", [new Uint8Array(2)], 2); // replaced: 2 + 4 bytes now
  recent.put("d", [new Uint8Array(4)], 4);
  assert.ok(recent.get("b") && recent.get("c") && recent.get("d"));
  recent.delete("c");
  assert.equal(recent.get("c"), undefined);
  recent.put("huge", [new Uint8Array(11)], 11);
  assert.equal(recent.get("huge"), undefined);
});

Deno.test("spool: a just-committed message reads back from memory the same as from its segment", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = "Subject: hi\r\n\r\n" + "body line\r\n".repeat(500);
    const spool = await openSpool(dir);
    const w = await spool.create();
    for (let i = 0; i < text.length; i += 1000) await w.write(new TextEncoder().encode(text.slice(i, i + 1000)));
    await w.commit();
    const streamed = async (s: typeof spool) => {
      const parts: Buffer[] = [];
      for await (const c of s.readStream(w.id)) parts.push(Buffer.from(c as Uint8Array));
      return Buffer.concat(parts).toString("latin1");
    };
    assert.equal(await streamed(spool), text);
    assert.equal(new TextDecoder().decode(await spool.readAll(w.id)), text);
    // A second spool over the same directory has nothing in memory: it reads the segment.
    const reopened = await openSpool(dir);
    assert.equal(await streamed(reopened), text);
    assert.equal(new TextDecoder().decode(await reopened.readAll(w.id)), text);
    await spool.delete(w.id);
    assert.equal(await spool.exists(w.id), false);
    await assert.rejects(() => spool.readAll(w.id));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
