import assert from "node:assert/strict";
import net from "node:net";
import { SMTPServer } from "smtp-server";
import { createConnection, startWhenReady } from "../../src/smtp/smtp_server_private.ts";

/** A server whose sockets count the system-level writes (`_write` / `_writev` calls) they make. */
async function countingServer() {
  const server = new SMTPServer({ name: "mx.test", authOptional: true, disabledCommands: ["STARTTLS", "AUTH"] });
  const counts = { writes: 0 };
  const accept = net.createServer((socket) => {
    const s = socket as unknown as Record<string, (...a: unknown[]) => unknown>;
    for (const name of ["_write", "_writev"]) {
      const original = s[name]!.bind(socket);
      s[name] = (...a: unknown[]) => {
        counts.writes++;
        return original(...a);
      };
    }
    const conn = createConnection(server, socket, {});
    startWhenReady(conn, () => conn.connectionReady());
  });
  await new Promise<void>((resolve) => accept.listen(0, "127.0.0.1", resolve));
  return { port: (accept.address() as net.AddressInfo).port, counts, close: () => new Promise((r) => accept.close(r)) };
}

async function replies(conn: Deno.Conn, lines: number): Promise<string> {
  const buf = new Uint8Array(65536);
  let text = "";
  while ((text.match(/\r\n/g) ?? []).length < lines) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

Deno.test("pipelined commands (MAIL, ten RCPTs, DATA) are answered with one write, the greeting and EHLO at once", async () => {
  const srv = await countingServer();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: srv.port });
  try {
    assert.match(await replies(conn, 1), /^220 mx\.test/);
    const afterGreeting = srv.counts.writes;
    await conn.write(new TextEncoder().encode("EHLO client.test\r\n"));
    assert.match(await replies(conn, 1), /^250/);
    let cmds = "MAIL FROM:<a@example.com>\r\n";
    for (let i = 0; i < 10; i++) cmds += `RCPT TO:<user${i}@example.net>\r\n`;
    cmds += "DATA\r\n";
    const before = srv.counts.writes;
    await conn.write(new TextEncoder().encode(cmds));
    const text = await replies(conn, 12);
    assert.equal(text.match(/^250 /gm)?.length, 11, text);
    assert.match(text, /^354 /m);
    assert.equal(afterGreeting, 1, "the greeting was written on its own");
    assert.equal(srv.counts.writes - before, 1, `12 pipelined replies took ${srv.counts.writes - before} writes`);
  } finally {
    conn.close();
    await srv.close();
  }
});
