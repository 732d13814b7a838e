/**
 * A raw SMTP client over Deno.connect for exact-reply and byte-level tests
 * (pipelining, smuggling sequences, abrupt disconnects).
 */

/** One SMTP reply (all lines of a multi-line reply). */
export interface Reply {
  code: number;
  lines: string[];
  text: string;
}

/** A raw SMTP connection. */
export class RawSmtp {
  #buf = "";
  #reader: ReadableStreamDefaultReader<string>;
  private constructor(readonly conn: Deno.Conn) {
    this.#reader = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
  }

  static async connect(port: number, host = "127.0.0.1"): Promise<RawSmtp> {
    const conn = await Deno.connect({ hostname: host, port });
    conn.setNoDelay(true);
    return new RawSmtp(conn);
  }

  /** Reads one complete reply; rejects on EOF. */
  async reply(timeoutMs = 10_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    const lines: string[] = [];
    while (true) {
      const nl = this.#buf.indexOf("\r\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 2);
        lines.push(line);
        if (line[3] !== "-") {
          return { code: Number(line.slice(0, 3)), lines, text: lines.join("\n") };
        }
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for reply; got ${JSON.stringify(lines)}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const next = await Promise.race([
        this.#reader.read(),
        new Promise<never>((_, rej) => timer = setTimeout(() => rej(new Error("timeout waiting for reply")), left)),
      ]).finally(() => clearTimeout(timer));
      if (next.done) throw new Error(`connection closed; partial reply ${JSON.stringify(lines)}`);
      this.#buf += next.value;
    }
  }

  /** True when the server closed the connection (reads to EOF). */
  async closedByServer(timeoutMs = 5000): Promise<boolean> {
    try {
      while (true) {
        const r = await this.reply(timeoutMs);
        if (r.code === 421) continue;
      }
    } catch (err) {
      return /connection closed/.test((err as Error).message);
    }
  }

  async send(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  /** Sends a command line (CRLF added) and reads its reply. */
  async cmd(line: string): Promise<Reply> {
    await this.send(line + "\r\n");
    return await this.reply();
  }

  close() {
    try {
      this.#reader.cancel().catch(() => {});
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/** Sends one message over a fresh connection; returns the final DATA reply. */
export async function sendMessage(
  port: number,
  from: string,
  to: string[],
  data: string,
  ehlo = "client.test",
): Promise<Reply> {
  const c = await RawSmtp.connect(port);
  try {
    await c.reply();
    await c.cmd(`EHLO ${ehlo}`);
    const mail = await c.cmd(`MAIL FROM:<${from}>`);
    if (mail.code !== 250) return mail;
    for (const rcpt of to) {
      const r = await c.cmd(`RCPT TO:<${rcpt}>`);
      if (r.code !== 250) return r;
    }
    const d = await c.cmd("DATA");
    if (d.code !== 354) return d;
    await c.send(data.endsWith("\r\n") ? data : data + "\r\n");
    const final = await c.cmd(".");
    await c.cmd("QUIT").catch(() => {});
    return final;
  } finally {
    c.close();
  }
}
