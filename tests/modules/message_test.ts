/** Header parsing and formatting, the data hook's view of a stored message, and header insertion. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { formatHeader, parseHeaders } from "../../src/modules/mod.ts";
import { openMessage } from "../../src/modules/message.ts";
import { firstFieldEnd, insertHeaders } from "../../src/modules/rewrite.ts";
import { openSpool, ulid } from "../../src/spool/mod.ts";

const MESSAGE = "Received: from a\r\n\tby b; date\r\nSubject: hello\r\n world\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody line\r\n";

Deno.test("parses header fields in order, unfolding continuation lines", () => {
  const h = parseHeaders(MESSAGE.slice(0, MESSAGE.indexOf("\r\n\r\n") + 4));
  assert.deepEqual(h.list.map((f) => f.name), ["Received", "Subject", "X-A", "x-a"]);
  assert.equal(h.get("subject"), "hello world");
  assert.deepEqual(h.getAll("X-A"), ["1", "2"]);
  assert.equal(h.has("Date"), false);
});

Deno.test("formats header fields, folding long values and refusing line breaks", () => {
  assert.equal(formatHeader("X-Tag", "vip"), "X-Tag: vip\r\n");
  const long = formatHeader("X-Long", Array.from({ length: 30 }, (_, i) => `word${i}`).join(" "));
  for (const line of long.split("\r\n").filter(Boolean)) assert.ok(line.length <= 78, line);
  assert.equal(parseHeaders(long).get("X-Long")?.split(" ").length, 30);
  assert.throws(() => formatHeader("X-Bad", "a\r\nBcc: victim@example.com"), TypeError);
  assert.throws(() => formatHeader("X Bad", "a"), TypeError);
  assert.throws(() => formatHeader("X:Bad", "a"), TypeError);
});

Deno.test("the data hook sees parsed headers and can stream the body and the raw message, twice", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "m");
    await Deno.writeTextFile(path, MESSAGE);
    const { message, close } = await openMessage(path, "ID", MESSAGE.length);
    assert.equal(message.headers.get("Subject"), "hello world");
    assert.equal(await new Response(message.body()).text(), "body line\r\n");
    assert.equal(await new Response(message.body()).text(), "body line\r\n");
    assert.equal(await new Response(message.raw()).text(), MESSAGE);
    const unread = message.body().getReader();
    await unread.read();
    close(); // files a hook left open are closed
    await assert.rejects(() => new Response(message.body()).text());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a message without a body still has headers and an empty body", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "m");
    await Deno.writeTextFile(path, "Subject: only\r\n");
    const { message, close } = await openMessage(path, "ID", 15);
    assert.equal(message.headers.get("Subject"), "only");
    assert.equal(await new Response(message.body()).text(), "");
    close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("insertHeaders puts fields below the first (folded) field and returns the new size", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const spool = await openSpool(dir, { fsync: true });
    const id = ulid();
    await Deno.writeTextFile(spool.pathOf(id), MESSAGE); // a message with its own file, as data hooks get
    assert.equal(firstFieldEnd(new TextEncoder().encode(MESSAGE)), "Received: from a\r\n\tby b; date\r\n".length);
    const size = await insertHeaders(spool, id, "X-Added: yes\r\n");
    const text = await Deno.readTextFile(spool.pathOf(id));
    assert.equal(text, MESSAGE.replace("Subject:", "X-Added: yes\r\nSubject:"));
    assert.equal(size, text.length);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(join(dir, "tmp"))), [], "no temp file left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
