/**
 * The DATA encoder's fast path (#18): nodemailer's DataStream with {@link installFastDotStuffing}
 * gives exactly the original per-byte transform's output and byte counts for every input and
 * every chunking (random bytes rich in '.', CR and LF, and named cases), and a message whose
 * lines start with "." arrives intact at a real SMTP server (aiosmtpd).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import fc from "fast-check";
import { lineStartDots } from "../../src/delivery/dot_stuff.ts";
import { createDataStream, type DataStream, installFastDotStuffing } from "../../src/delivery/nodemailer_private.ts";
import { SmtpSession } from "../../src/delivery/smtp_client.ts";
import { startFaultSink } from "../../testing/fault_sink.ts";

installFastDotStuffing();

interface Encoded {
  out: string;
  inByteCount: number;
  outByteCount: number;
  lastByte: number | false;
}

/** Writes `chunks` through `stream` (and ends it); the output as latin1 text, and the counters. */
function encode(stream: DataStream, chunks: Uint8Array[]): Promise<Encoded> {
  return new Promise((resolve, reject) => {
    const out: Uint8Array[] = [];
    stream.on("data", (c: Uint8Array) => out.push(c));
    stream.on("error", reject);
    stream.on("end", () =>
      resolve({
        out: Buffer.concat(out).toString("latin1"),
        inByteCount: stream.inByteCount,
        outByteCount: stream.outByteCount,
        lastByte: stream.lastByte,
      }));
    for (const c of chunks) stream.write(c);
    stream.end();
  });
}

const latin1 = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

/** Both encoders on the same chunks: the patched one must equal the original. */
async function assertSame(chunks: Uint8Array[]): Promise<Encoded> {
  const patched = await encode(createDataStream(), chunks);
  const original = await encode(createDataStream({ original: true }), chunks);
  assert.deepEqual(patched, original);
  return patched;
}

/** Cuts `bytes` at the given points (sorted, duplicates give empty chunks). */
function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const at = points.map((p) => p % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of at) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  chunks.push(bytes.subarray(from));
  return chunks;
}

const byte = fc.constantFrom(0x2e, 0x0d, 0x0a, 0x61, 0x2e, 0x0d, 0x0a, 0x61, 0x20, 0x00, 0xff);
const crlfText = fc.array(
  fc.constantFrom("\r\n", ".", "a", "ab.", "\r\n.", "\r\n..\r\n", "x".repeat(76) + "\r\n"),
  { maxLength: 200 },
)
  .map((parts) => latin1(parts.join("")));

Deno.test("random bytes, random chunking: the patched DataStream equals nodemailer's transform", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.uint8Array({ maxLength: 0 }), fc.array(byte, { maxLength: 64 }).map((b) => new Uint8Array(b))),
      fc.array(fc.nat(), { maxLength: 8 }),
      async (bytes, points) => {
        await assertSame(cut(bytes, points));
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("mostly clean CRLF text (the fast path's case), random chunking: equal to nodemailer's transform", async () => {
  await fc.assert(
    fc.asyncProperty(crlfText, fc.array(fc.nat(), { maxLength: 6 }), async (bytes, points) => {
      await assertSame(cut(bytes, points));
    }),
    { numRuns: 1000 },
  );
});

Deno.test("lineStartDots agrees with the original's rule: dots exactly where it inserts only dots", () => {
  fc.assert(
    fc.property(
      fc.array(byte, { maxLength: 32 }).map((b) => new Uint8Array(b)),
      fc.constantFrom<number | false>(false, 0x0d, 0x0a, 0x2e, 0x61),
      (bytes, prev) => {
        // The original's rule, byte by byte (data-stream.js, nodemailer@10.6.0).
        let lineEnds = false;
        const dots: number[] = [];
        for (let i = 0; i < bytes.length; i++) {
          const b = bytes[i]!;
          const p = i ? bytes[i - 1]! : prev;
          if ((p === 0x0d && b !== 0x0a) || (b === 0x0a && p !== 0x0d)) lineEnds = true;
          else if (b === 0x2e && (p === 0x0a || p === false)) dots.push(i);
        }
        assert.deepEqual(lineStartDots(bytes, prev), lineEnds ? undefined : dots);
      },
    ),
    { numRuns: 5000 },
  );
});

Deno.test("named cases: equal to nodemailer's transform, with the expected output", async (t) => {
  const cases: [string, string[], string][] = [
    ["leading dot at stream start", [".a\r\n"], "..a\r\n.\r\n"],
    ["dot after CRLF split across chunks", ["a\r\n", ".b\r\n"], "a\r\n..b\r\n.\r\n"],
    ["dot after CR | LF split", ["a\r", "\n.b\r\n"], "a\r\n..b\r\n.\r\n"],
    ["bare CR before dot", ["a\r.b\r\n"], "a\r\n..b\r\n.\r\n"],
    ["bare CR before dot, across chunks", ["a\r", ".b\r\n"], "a\r\n..b\r\n.\r\n"],
    ["bare LF", ["a\nb\r\n"], "a\r\nb\r\n.\r\n"],
    ["bare LF at a chunk start", ["a", "\nb\r\n"], "a\r\nb\r\n.\r\n"],
    ["CR at chunk end, then LF at next chunk start", ["a\r", "\nb\r\n"], "a\r\nb\r\n.\r\n"],
    ["CR at chunk end, then CR", ["a\r", "\rb\r\n"], "a\r\n\r\nb\r\n.\r\n"],
    ["CR at the end of the stream", ["a\r"], "a\r\n.\r\n"],
    ["empty chunks", ["", "a\r\n", "", ".b\r\n", ""], "a\r\n..b\r\n.\r\n"],
    ["empty chunk first, then a leading dot", ["", ".a\r\n"], "..a\r\n.\r\n"],
    ["a lone '.' line", ["a\r\n.\r\nb\r\n"], "a\r\n..\r\nb\r\n.\r\n"],
    ["clean, no final CRLF", ["a\r\nb"], "a\r\nb\r\n.\r\n"],
    ["nothing at all", [], "\r\n.\r\n"],
    [
      "dots deep inside a long chunk",
      [("x".repeat(76) + "\r\n.y\r\n").repeat(30)],
      ("x".repeat(76) + "\r\n..y\r\n").repeat(30) + ".\r\n",
    ],
  ];
  for (const [name, chunks, expected] of cases) {
    await t.step(name, async () => {
      const r = await assertSame(chunks.map(latin1));
      assert.equal(r.out, expected);
      assert.equal(r.inByteCount, chunks.join("").length);
      assert.equal(r.outByteCount, expected.length);
    });
  }
});

Deno.test("a clean chunk goes out as the same buffer (no copy)", async () => {
  const chunk = Buffer.from("Subject: x\r\n\r\nbody\r\n", "latin1");
  const stream = createDataStream();
  const out: Uint8Array[] = [];
  stream.on("data", (c: Uint8Array) => out.push(c));
  const ended = new Promise((resolve) => stream.on("end", resolve));
  stream.end(chunk);
  await ended;
  assert.equal(out[0], chunk);
});

Deno.test("end to end: lines starting with '.' arrive unstuffed and intact at aiosmtpd", async () => {
  await using sink = await startFaultSink({ keep_data: true });
  const session = await SmtpSession.open({
    host: sink.host,
    port: sink.port,
    tls: "none",
    verifyCertificates: false,
    heloName: "mx.example",
    timeouts: { connect: 10_000, greeting: 10_000, data: 10_000 },
  });
  try {
    const body = "Subject: dots\r\nX-Test-Id: dots\r\n\r\n.\r\n..\r\n.leading\r\nmiddle.\r\n" +
      ("x".repeat(76) + "\r\n").repeat(900) + ".after a chunk boundary\r\n...\r\nend\r\n";
    const bytes = latin1(body);
    // Chunks cut right before dot lines and between CR and LF, as a file read might.
    const cuts = [body.indexOf(".leading"), body.indexOf("\n.after"), 65_536, body.indexOf("..\r\n") + 3];
    const chunks = cut(bytes, cuts);
    const result = await session.send({
      sender: "a@example.com",
      recipients: [{ address: "b@example.net" }],
      size: bytes.length,
      open: () => Readable.from(chunks),
    });
    assert.deepEqual(result.recipients.map((r) => r.reply), ["250 2.0.0 OK queued"]);
    const [message] = await sink.messages();
    assert.equal(message?.data, body);
  } finally {
    await session.close();
  }
});
