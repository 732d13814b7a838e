/**
 * A small SMTP client on raw Deno TCP for the scale benchmarks: replies read from a
 * byte buffer, writes with a result instead of a throw, and the moment the server
 * closed the connection (for idle sessions and slow clients that are cut off).
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One SMTP reply (the last line's code; all lines' text). */
export interface Reply {
  code: number;
  text: string;
}

/** One client connection. */
export class SmtpConn {
  #buf = new Uint8Array(4096);
  #len = 0;
  #eof = false;
  /** performance.now() when the server closed the connection (EOF or reset), else 0. */
  closedAt = 0;
  private constructor(readonly conn: Deno.TcpConn) {}

  static async open(port: number, hostname = "127.0.0.1"): Promise<SmtpConn> {
    const conn = await Deno.connect({ hostname, port });
    conn.setNoDelay(true);
    return new SmtpConn(conn);
  }

  get closed(): boolean {
    return this.#eof;
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    if (this.#len === this.#buf.length) {
      const bigger = new Uint8Array(this.#buf.length * 2);
      bigger.set(this.#buf);
      this.#buf = bigger;
    }
    let n: number | null = null;
    try {
      n = await this.conn.read(this.#buf.subarray(this.#len));
    } catch {
      n = null;
    }
    if (n === null) {
      this.#eof = true;
      this.closedAt ||= performance.now();
      return false;
    }
    this.#len += n;
    return true;
  }

  /** Reads one complete (possibly multi-line) reply; `{code: 0}` when the connection ended first. */
  async reply(): Promise<Reply> {
    while (true) {
      let start = 0;
      for (let i = 0; i + 1 < this.#len; i++) {
        if (this.#buf[i] !== 13 || this.#buf[i + 1] !== 10) continue;
        if (this.#buf[start + 3] !== 45 /* "-" */) {
          const text = decoder.decode(this.#buf.subarray(0, i));
          this.#buf.copyWithin(0, i + 2, this.#len);
          this.#len -= i + 2;
          const last = text.slice(text.lastIndexOf("\n") + 1);
          return { code: Number(last.slice(0, 3)) || 0, text };
        }
        start = i + 2;
      }
      if (!(await this.#fill())) {
        const text = decoder.decode(this.#buf.subarray(0, this.#len));
        this.#len = 0;
        return { code: 0, text };
      }
    }
  }

  /** Reads (and returns) whatever the server sends until it closes the connection. */
  async readToEnd(): Promise<string> {
    while (await this.#fill()) { /* keep reading */ }
    const text = decoder.decode(this.#buf.subarray(0, this.#len));
    this.#len = 0;
    return text;
  }

  /** Writes all bytes; false when the connection is gone. */
  async write(data: Uint8Array | string): Promise<boolean> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    try {
      let off = 0;
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
      return true;
    } catch {
      this.closedAt ||= performance.now();
      return false;
    }
  }

  /** Sends a command line and reads its reply. */
  async cmd(line: string): Promise<Reply> {
    if (!(await this.write(line + "\r\n"))) return { code: 0, text: "" };
    return await this.reply();
  }

  close() {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

/** Connects, reads the greeting and says EHLO; throws unless both get the expected reply. */
export async function openSession(port: number, helo = "bench.test"): Promise<SmtpConn> {
  const c = await SmtpConn.open(port);
  const greeting = await c.reply();
  if (greeting.code !== 220) {
    c.close();
    throw new Error(`greeting: ${greeting.text || "connection closed"}`);
  }
  const ehlo = await c.cmd(`EHLO ${helo}`);
  if (ehlo.code !== 250) {
    c.close();
    throw new Error(`EHLO: ${ehlo.text || "connection closed"}`);
  }
  return c;
}

/** `n` octets of message text: a header, then 79-octet lines (no line starts with "."). */
export function messageBytes(n: number, subject = "bench"): Uint8Array {
  const head = `Subject: ${subject}\r\nFrom: <bench@example.com>\r\nTo: <sink@example.net>\r\n\r\n`;
  const line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01234\r\n";
  const room = Math.max(2, n - head.length);
  return encoder.encode(head + line.repeat(Math.ceil(room / line.length)).slice(0, room - 2) + "\r\n");
}

/** Sends one message on an open session; returns the final reply and the time from MAIL FROM to it. */
export async function sendMessage(
  c: SmtpConn,
  data: Uint8Array,
  rcpt = "sink@example.net",
): Promise<{ reply: Reply; ms: number }> {
  const t0 = performance.now();
  for (const line of ["MAIL FROM:<bench@example.com>", `RCPT TO:<${rcpt}>`]) {
    const r = await c.cmd(line);
    if (r.code !== 250) return { reply: r, ms: performance.now() - t0 };
  }
  const r = await c.cmd("DATA");
  if (r.code !== 354) return { reply: r, ms: performance.now() - t0 };
  await c.write(data);
  await c.write(".\r\n");
  return { reply: await c.reply(), ms: performance.now() - t0 };
}
