/**
 * A discarding SMTP sink in Deno that counts the octets of every message it receives
 * (dot-stuffing and the terminating ".\r\n" not included), so a benchmark can check that
 * a large message arrived whole. EHLO offers `SIZE 0` (no limit) and `8BITMIME`; no
 * PIPELINING, so clients send one command at a time.
 * @module
 */
import { concatBytes } from "../../src/util/bytes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const END = [13, 10, 46, 13, 10]; // CRLF . CRLF

/** One message the sink received. */
export interface SinkMessage {
  bytes: number;
  /** performance.now() of the DATA command's 354 and of the final "." */
  startedAt: number;
  endedAt: number;
}

/** A running byte-counting sink. */
export interface ByteSink {
  port: number;
  readonly messages: SinkMessage[];
  /** Resolves with the `n`th message once it has arrived (1-based). */
  waitFor(n: number, timeoutMs: number): Promise<SinkMessage>;
  stop(): Promise<void>;
}

/** Offset of CRLF.CRLF in `buf`, or -1. */
function findEnd(buf: Uint8Array): number {
  for (let i = buf.indexOf(46, 2); i >= 0 && i + 2 < buf.length; i = buf.indexOf(46, i + 1)) {
    if (buf[i - 2] === END[0] && buf[i - 1] === END[1] && buf[i + 1] === END[3] && buf[i + 2] === END[4]) return i - 2;
  }
  return -1;
}

async function serve(conn: Deno.Conn, received: (m: SinkMessage) => void) {
  const write = (s: string) => conn.write(encoder.encode(s + "\r\n"));
  let text = "";
  let data: { total: number; tail: Uint8Array; startedAt: number } | null = null;
  const buf = new Uint8Array(256 * 1024);
  await write("220 byte-sink ESMTP");
  try {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) return;
      let chunk = buf.subarray(0, n);
      while (chunk.length > 0) {
        if (data) {
          const joined = concatBytes([data.tail, chunk]);
          const at = findEnd(joined);
          if (at < 0) {
            data.total += chunk.length;
            data.tail = joined.slice(-4);
            chunk = chunk.subarray(chunk.length);
            continue;
          }
          const used = at + 5 - data.tail.length;
          data.total += used;
          received({ bytes: data.total - 3, startedAt: data.startedAt, endedAt: performance.now() });
          data = null;
          chunk = chunk.subarray(used);
          await write("250 2.0.0 Ok: discarded");
          continue;
        }
        text += decoder.decode(chunk);
        chunk = chunk.subarray(chunk.length);
        let nl;
        while (!data && (nl = text.indexOf("\r\n")) >= 0) {
          const line = text.slice(0, nl);
          text = text.slice(nl + 2);
          const verb = line.slice(0, 4).toUpperCase();
          if (verb === "EHLO") await write("250-byte-sink\r\n250-SIZE 0\r\n250 8BITMIME");
          else if (verb === "HELO") await write("250 byte-sink");
          else if (verb === "DATA") {
            await write("354 End data with <CR><LF>.<CR><LF>");
            data = { total: 0, tail: Uint8Array.of(13, 10), startedAt: performance.now() };
            // Bytes after DATA in the same read belong to the message.
            chunk = encoder.encode(text);
            text = "";
          } else if (verb === "QUIT") {
            await write("221 2.0.0 Bye");
            return;
          } else await write("250 2.0.0 Ok");
        }
      }
    }
  } catch {
    // client went away
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/** Starts the sink on 127.0.0.1 (port 0 = any free port). */
export function startByteSink(port = 0): ByteSink {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const messages: SinkMessage[] = [];
  const waiters: { n: number; resolve: (m: SinkMessage) => void; timer: ReturnType<typeof setTimeout> }[] = [];
  const conns = new Set<Promise<void>>();
  const received = (m: SinkMessage) => {
    messages.push(m);
    for (const w of [...waiters]) {
      if (messages.length >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(messages[w.n - 1]!); // length >= n
      }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const p = serve(conn, received);
        conns.add(p);
        void p.finally(() => conns.delete(p));
      }
    } catch { /* closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    messages,
    waitFor(n, timeoutMs) {
      if (messages.length >= n) return Promise.resolve(messages[n - 1]!);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`message ${n} did not reach the sink within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        const w = { n, resolve, timer };
        waiters.push(w);
      });
    },
    async stop() {
      listener.close();
      await accepting;
      await Promise.race([Promise.allSettled([...conns]), new Promise((r) => setTimeout(r, 2000))]);
    },
  };
}
