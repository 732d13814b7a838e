/**
 * The raw SMTP test client: exact replies and byte-level control over a plain TCP
 * connection, STARTTLS or implicit TLS, and an optional PROXY (v1 line or v2 bytes)
 * header sent before anything else. Tests use the throwing calls ({@link SmtpClient.reply},
 * {@link SmtpClient.cmd}, {@link SmtpClient.send}); load generators use the ones that report
 * a closed connection as a value ({@link SmtpClient.tryReply}, {@link SmtpClient.tryCmd},
 * {@link SmtpClient.write}) and read {@link SmtpClient.closedAt}.
 * @module
 */

/** One SMTP reply (all lines of a multi-line reply). */
export interface Reply {
  /** The last line's code (0 from {@link SmtpClient.tryReply} when the connection ended first). */
  code: number;
  lines: string[];
  /** The lines joined with "\n". */
  text: string;
}

/** Why a throwing call of {@link SmtpClient} failed. */
export class SmtpClientError extends Error {
  override name = "SmtpClientError";
  /** `closed`: the server closed the connection; `timeout`: no complete reply in time; `tls`: STARTTLS failed. */
  constructor(readonly code: "closed" | "timeout" | "tls", message: string) {
    super(message);
  }
}

/** How to open a session. */
export interface SmtpClientOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** A PROXY v1 line (CRLF added) or raw v2 bytes, sent before anything else. */
  proxy?: string | Uint8Array;
  /** "implicit" wraps the socket in TLS at once (smtps); otherwise plain until {@link SmtpClient.startTls}. */
  tls?: "implicit";
  /** PEM of the CA that signed the server's certificate (for TLS). */
  caCert?: string;
  /** Default timeout of {@link SmtpClient.reply}, ms (default 10 s). */
  timeoutMs?: number;
}

const enc = new TextEncoder();

/** One SMTP session over TCP, optionally TLS. */
export class SmtpClient {
  #buf = "";
  #dec = new TextDecoder();
  #chunk = new Uint8Array(16_384);
  /** A read in flight (kept across a timed-out {@link reply} so no bytes are lost). */
  #pending: Promise<number | null> | undefined;
  #eof = false;
  /** The plain socket until TLS starts. */
  #tcp: Deno.TcpConn | undefined;
  #conn: Deno.Conn;
  readonly #options: SmtpClientOptions;
  /** performance.now() when the server closed the connection (EOF, reset or failed write), else 0. */
  closedAt = 0;

  private constructor(tcp: Deno.TcpConn, conn: Deno.Conn, options: SmtpClientOptions) {
    this.#tcp = conn === tcp ? tcp : undefined;
    this.#conn = conn;
    this.#options = options;
  }

  /** Connects to host:port, sends the PROXY header and starts implicit TLS as asked; reads nothing yet. */
  static async connect(port: number, options: SmtpClientOptions = {}): Promise<SmtpClient> {
    const tcp = await Deno.connect({ hostname: options.host ?? "127.0.0.1", port });
    tcp.setNoDelay(true);
    if (options.proxy !== undefined) {
      await writeAll(tcp, typeof options.proxy === "string" ? enc.encode(options.proxy + "\r\n") : options.proxy);
    }
    const conn = options.tls === "implicit" ? await Deno.startTls(tcp, tlsOptions(options)) : tcp;
    return new SmtpClient(tcp, conn, options);
  }

  /** The current connection (TLS once started). */
  get conn(): Deno.Conn {
    return this.#conn;
  }

  /** True once the server closed the connection (or a write failed). */
  get closed(): boolean {
    return this.closedAt !== 0;
  }

  #markClosed(): void {
    this.#eof = true;
    this.closedAt ||= performance.now();
  }

  /** Starts the next read now, so a server's close is noticed (and the socket closed) even if nobody reads. */
  #readAhead(): void {
    if (this.#eof || this.#pending) return;
    this.#pending = this.#read();
  }

  /** One read; at EOF the socket is closed too (as a readable stream would), freeing it on both ends. */
  async #read(): Promise<number | null> {
    const n = await this.#conn.read(this.#chunk).catch(() => null);
    if (n === null) this.close();
    return n;
  }

  /** Reads once more into the buffer; false at EOF. Resolves `"timeout"` after `ms` (the read stays pending). */
  async #fill(ms = Infinity): Promise<boolean | "timeout"> {
    if (this.#eof) return false;
    this.#pending ??= this.#read();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = ms === Infinity ? await this.#pending : await Promise.race([
      this.#pending,
      new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms)),
    ]).finally(() => clearTimeout(timer));
    if (n === "timeout") return n;
    this.#pending = undefined;
    if (n === null) {
      this.#markClosed();
      return false;
    }
    this.#buf += this.#dec.decode(this.#chunk.subarray(0, n), { stream: true });
    return true;
  }

  /** Takes one complete reply from the buffer, if there is one; `lines` collects its lines. */
  #take(lines: string[]): Reply | undefined {
    while (true) {
      const nl = this.#buf.indexOf("\r\n");
      if (nl < 0) return undefined;
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 2);
      lines.push(line);
      if (line[3] !== "-") return { code: Number(line.slice(0, 3)), lines, text: lines.join("\n") };
    }
  }

  /** Reads one complete reply; rejects ({@link SmtpClientError}) on EOF or after `timeoutMs`. */
  async reply(timeoutMs: number = this.#options.timeoutMs ?? 10_000): Promise<Reply> {
    const r = await this.#reply(timeoutMs);
    this.#readAhead();
    return r;
  }

  async #reply(timeoutMs: number): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    const lines: string[] = [];
    while (true) {
      const r = this.#take(lines);
      if (r) return r;
      const left = deadline - Date.now();
      const filled = left > 0 ? await this.#fill(left) : "timeout";
      if (filled === "timeout") {
        throw new SmtpClientError("timeout", `timeout waiting for reply; got ${JSON.stringify(lines)}`);
      }
      if (!filled) throw new SmtpClientError("closed", `connection closed; partial reply ${JSON.stringify(lines)}`);
    }
  }

  /** Reads one complete reply without a deadline; `code` 0 (and any partial text) when the connection ended first. */
  async tryReply(): Promise<Reply> {
    const lines: string[] = [];
    while (true) {
      const r = this.#take(lines);
      if (r) {
        this.#readAhead();
        return r;
      }
      if (!(await this.#fill())) {
        const rest = this.#buf;
        this.#buf = "";
        if (rest) lines.push(rest);
        return { code: 0, lines, text: lines.join("\n") };
      }
    }
  }

  /** Reads (and returns) whatever the server sends until it closes the connection. */
  async readToEnd(): Promise<string> {
    while (await this.#fill()) { /* keep reading */ }
    const text = this.#buf;
    this.#buf = "";
    return text;
  }

  /** True when the server closes the connection (EOF) within `timeoutMs`, after any replies. */
  async closedByServer(timeoutMs = 5000): Promise<boolean> {
    try {
      while (true) await this.reply(timeoutMs);
    } catch (err) {
      return err instanceof SmtpClientError && err.code === "closed";
    }
  }

  /** Sends raw text or bytes; throws when the connection is gone. */
  async send(data: string | Uint8Array): Promise<void> {
    await writeAll(this.#conn, typeof data === "string" ? enc.encode(data) : data);
  }

  /** Sends raw text or bytes; false (and {@link closed}) when the connection is gone. */
  async write(data: string | Uint8Array): Promise<boolean> {
    try {
      await this.send(data);
      return true;
    } catch {
      this.closedAt ||= performance.now();
      return false;
    }
  }

  /** Sends a command line (CRLF added) and reads its reply; throws like {@link reply}. */
  async cmd(line: string, timeoutMs?: number): Promise<Reply> {
    await this.send(line + "\r\n");
    return await this.reply(timeoutMs);
  }

  /** Sends a command line and reads its reply like {@link tryReply}: `code` 0 when the connection is gone. */
  async tryCmd(line: string): Promise<Reply> {
    if (!(await this.write(line + "\r\n"))) return { code: 0, lines: [], text: "" };
    return await this.tryReply();
  }

  /** STARTTLS and the handshake; throws unless the server said 220. */
  async startTls(): Promise<void> {
    await this.send("STARTTLS\r\n");
    const r = await this.#reply(this.#options.timeoutMs ?? 10_000);
    if (r.code !== 220) throw new SmtpClientError("tls", `STARTTLS refused: ${r.text}`);
    if (!this.#tcp || this.#pending) throw new SmtpClientError("tls", "TLS is already on, or a read is pending");
    this.#conn = await Deno.startTls(this.#tcp, tlsOptions(this.#options));
    this.#tcp = undefined;
  }

  /** AUTH PLAIN with an initial response; returns the server's reply. */
  authPlain(user: string, password: string): Promise<Reply> {
    const token = btoa(String.fromCharCode(...enc.encode(`\0${user}\0${password}`)));
    return this.cmd(`AUTH PLAIN ${token}`);
  }

  /** Closes the connection (idempotent). */
  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  /** Closes the connection at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function tlsOptions(options: SmtpClientOptions): Deno.StartTlsOptions {
  return { hostname: "localhost", caCerts: options.caCert === undefined ? undefined : [options.caCert] };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Sends one message over a fresh connection; returns the final DATA reply (or the first refusal). */
export async function sendMessage(
  port: number,
  from: string,
  to: string[],
  data: string,
  ehlo = "client.test",
): Promise<Reply> {
  using c = await SmtpClient.connect(port);
  const greeting = await c.reply();
  if (greeting.code !== 220) return greeting; // refused at connect (e.g. 421)
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
}
