/**
 * The LMTP client's DATA stream: line ends, dot-stuffing and the final dot across the
 * write boundary (messages are sent in writes of up to 64 KB, the final dot on the last).
 */
import assert from "node:assert/strict";
import type net from "node:net";
import { Readable } from "node:stream";
import { SMTPServer } from "smtp-server";
import { LmtpSession, parseLmtpTarget } from "../../src/delivery/lmtp_client.ts";

Deno.test("lmtp client: small and large messages arrive byte for byte (dot-stuffing, bare LF, no final CRLF)", async () => {
  const got: string[] = [];
  const peer = new SMTPServer({
    lmtp: true,
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    size: 10 * 1024 * 1024,
    onData: (stream, _s, done) => {
      const parts: Buffer[] = [];
      stream.on("data", (c: Buffer) => parts.push(c)).on("end", () => {
        got.push(Buffer.concat(parts).toString("latin1"));
        done();
      });
    },
  });
  await new Promise<void>((resolve) => peer.listen(0, "127.0.0.1", resolve));
  const target = parseLmtpTarget(`127.0.0.1:${(peer.server.address() as net.AddressInfo).port}`)!;
  const session = await LmtpSession.open(target, { lhloName: "mx.test", timeoutMs: 10_000 });
  try {
    const line = (i: number) => (i % 7 === 0 ? "." : "") + `line ${i} ` + "x".repeat(i % 90);
    const large = Array.from({ length: 6000 }, (_, i) => line(i)).join("\n") + "\n.\nlast line without end";
    const cases = [
      {
        text: "Subject: small\r\n\r\n.leading dot\r\nbody\r\n",
        expect: "Subject: small\r\n\r\n.leading dot\r\nbody\r\n",
      },
      { text: large, expect: large.replaceAll("\n", "\r\n") + "\r\n" },
    ];
    for (const { text, expect } of cases) {
      const bytes = new TextEncoder().encode(text);
      // Chunks of odd sizes, so CR/LF pairs and dots straddle the spool's chunks too.
      const chunks = Array.from(
        { length: Math.ceil(bytes.length / 4093) },
        (_, i) => bytes.subarray(i * 4093, (i + 1) * 4093),
      );
      const replies = await session.send({
        sender: "a@example.com",
        recipients: [{ address: "b@example.com" }, { address: "c@example.com" }],
        size: bytes.length,
        open: () => Readable.from(chunks),
      });
      assert.deepEqual(replies.map((r) => r.code), [250, 250]);
      assert.equal(got.at(-1)!.length, expect.length);
      assert.equal(got.at(-1), expect);
    }
    assert.ok(cases[1]!.expect.length > 128 * 1024, "the large message needs several writes");
  } finally {
    await session.close();
    await new Promise<void>((resolve) => peer.close(() => resolve()));
  }
});
