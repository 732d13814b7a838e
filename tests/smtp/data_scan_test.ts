import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { createParser, installFastDataScan } from "../../src/smtp/smtp_server_private.ts";

installFastDataScan();

/**
 * Everything a parser hands out for `input` written in pieces of the given sizes: the command
 * lines, and per DATA each chunk of the data stream with the byte counts at its end.
 */
async function parse(input: Buffer, sizes: number[], original: boolean, maxBytes: number): Promise<string[]> {
  const parser = createParser({ original });
  const events: string[] = [];
  parser.oncommand = (line: Buffer, next?: () => void) => {
    const command = line.toString("latin1");
    events.push(`command ${JSON.stringify(command)}`);
    if (command === "DATA") {
      const data = parser.startDataMode(maxBytes);
      data.on("data", (chunk: Buffer) => events.push(`data ${JSON.stringify(chunk.toString("latin1"))}`));
      data.on("end", () => {
        events.push(`end ${data.byteLength} ${data.sizeExceeded} ${parser.dataBytes}`);
        setImmediate(() => parser.continue()); // as smtp-server does, after the message is handled
      });
    }
    // Later, as smtp-server's handlers answer (a synchronous `next` lets `continue()` drop the
    // continuation of a second message that ends within the first one's remainder).
    if (next) setImmediate(next);
  };
  let at = 0;
  for (let k = 0; at < input.length; k++) {
    const size = sizes[k % sizes.length]!;
    const piece = input.subarray(at, at + size);
    at += size;
    await new Promise<void>((resolve, reject) => parser.write(piece, (err) => err ? reject(err) : resolve()));
  }
  for (let k = 0; k < 3; k++) await new Promise((resolve) => setImmediate(resolve));
  return events;
}

const PIECES = [
  "a",
  "xy",
  ".",
  "..",
  "\r\n",
  "\r",
  "\n",
  "\r\n.",
  "\r\n..",
  "\n.",
  "\r\n.\r\n",
  "\r\n.\r\nNOOP\r\n",
  "\0",
];

Deno.test("the fast DATA scan hands out exactly what smtp-server's own does, any input, any chunking", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.constantFrom(...PIECES), { maxLength: 40 }),
      fc.array(fc.constantFrom(...PIECES), { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: 80 }),
      async (body, second, sizes, maxBytes) => {
        const text = `EHLO x\r\nDATA\r\n${body.join("")}\r\n.\r\nRSET\r\nDATA\r\n${second.join("")}\r\n.\r\nQUIT\r\n`;
        const input = Buffer.from(text, "latin1");
        const want = await parse(input, sizes, true, maxBytes);
        assert.deepEqual(await parse(input, sizes, false, maxBytes), want);
      },
    ),
    { numRuns: 400 },
  );
});

Deno.test("the fast DATA scan unstuffs dots and finds the end in a large message split anywhere", async () => {
  const lines: string[] = [];
  for (let n = 0; n < 2000; n++) lines.push(n % 7 === 0 ? "..dot line" : "x".repeat(n % 90));
  const body = lines.join("\r\n");
  const input = Buffer.from(`DATA\r\n${body}\r\n.\r\nQUIT\r\n`, "latin1");
  for (const size of [1, 5, 4096, 65536, input.length]) {
    const events = await parse(input, [size], false, 1 << 30);
    const data = events.filter((e) => e.startsWith("data ")).map((e) => JSON.parse(e.slice(5)) as string).join("");
    assert.equal(data, body.replaceAll("\r\n..", "\r\n.").replace(/^\.\./, ".") + "\r\n");
    assert.deepEqual(events.filter((e) => e.startsWith("command ")), ['command "DATA"', 'command "QUIT"']);
    assert.deepEqual(events, await parse(input, [size], true, 1 << 30));
  }
});
