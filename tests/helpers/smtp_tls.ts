/**
 * A raw SMTP client that can speak TLS (STARTTLS or implicit) and send a PROXY
 * header first: for tests that need an authenticated session from a chosen client
 * address (a listener with `proxy_protocol`) and exact replies. Reads are plain
 * `conn.read` calls, so the connection can be upgraded to TLS mid-session.
 */
import type { Reply } from "./smtp_raw.ts";

/** How to open the session. */
export interface TlsSmtpOptions {
  /** A PROXY v1 line (CRLF added) or raw v2 bytes, sent before anything else. */
  proxy?: string | Uint8Array;
  /** "implicit" wraps the socket in TLS at once (smtps); otherwise plain until {@link TlsSmtp.startTls}. */
  tls?: "implicit";
  /** PEM of the server's (self-signed) certificate. */
  caCert: string;
}

const enc = new TextEncoder();

/** One SMTP session over TCP, optionally TLS. */
export class TlsSmtp {
  #buf = "";
  #dec = new TextDecoder();
  /** The plain socket until TLS starts. */
  #tcp: Deno.TcpConn | undefined;
  private constructor(private conn: Deno.Conn, private readonly caCert: string) {
    this.#tcp = "setNoDelay" in conn ? conn as Deno.TcpConn : undefined;
  }

  /** Connects to 127.0.0.1:port and reads nothing yet (call {@link reply} for the greeting). */
  static async connect(port: number, options: TlsSmtpOptions): Promise<TlsSmtp> {
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
    tcp.setNoDelay(true);
    if (options.proxy !== undefined) {
      await writeAll(tcp, typeof options.proxy === "string" ? enc.encode(options.proxy + "\r\n") : options.proxy);
    }
    const conn = options.tls === "implicit"
      ? await Deno.startTls(tcp, { hostname: "localhost", caCerts: [options.caCert] })
      : tcp;
    return new TlsSmtp(conn, options.caCert);
  }

  /** Reads one complete reply; rejects on EOF or after timeoutMs. */
  async reply(timeoutMs = 15_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    const lines: string[] = [];
    const chunk = new Uint8Array(16_384);
    while (true) {
      const nl = this.#buf.indexOf("\r\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 2);
        lines.push(line);
        if (line[3] !== "-") return { code: Number(line.slice(0, 3)), lines, text: lines.join("\n") };
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for reply; got ${JSON.stringify(lines)}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.conn.read(chunk).catch(() => null),
        new Promise<never>((_, rej) => timer = setTimeout(() => rej(new Error("timeout waiting for reply")), left)),
      ]).finally(() => clearTimeout(timer));
      if (n === null) throw new Error(`connection closed; partial reply ${JSON.stringify(lines)}`);
      this.#buf += this.#dec.decode(chunk.subarray(0, n), { stream: true });
    }
  }

  /** Sends raw text or bytes. */
  async send(data: string | Uint8Array): Promise<void> {
    await writeAll(this.conn, typeof data === "string" ? enc.encode(data) : data);
  }

  /** Sends a command line (CRLF added) and reads its reply. */
  async cmd(line: string): Promise<Reply> {
    await this.send(line + "\r\n");
    return await this.reply();
  }

  /** STARTTLS and the handshake; throws unless the server said 220. */
  async startTls(): Promise<void> {
    const r = await this.cmd("STARTTLS");
    if (r.code !== 220) throw new Error(`STARTTLS refused: ${r.text}`);
    if (!this.#tcp) throw new Error("TLS is already on");
    this.conn = await Deno.startTls(this.#tcp, { hostname: "localhost", caCerts: [this.caCert] });
    this.#tcp = undefined;
  }

  /** AUTH PLAIN with an initial response; returns the server's reply. */
  authPlain(user: string, password: string): Promise<Reply> {
    const token = btoa(String.fromCharCode(...enc.encode(`\0${user}\0${password}`)));
    return this.cmd(`AUTH PLAIN ${token}`);
  }

  /** True when the server closes the connection (EOF) within timeoutMs, after any replies. */
  async closedByServer(timeoutMs = 5000): Promise<boolean> {
    try {
      while (true) await this.reply(timeoutMs);
    } catch (err) {
      return /connection closed/.test((err as Error).message);
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/**
 * A test CA and a "localhost" / 127.0.0.1 server certificate it signed, made with the
 * openssl CLI (Deno's TLS client refuses a self-signed CA certificate as a server's
 * own, so {@link TlsSmtp} needs a real chain). Returns PEM file paths and the CA's PEM.
 */
export async function certificateChain(dir: string): Promise<{ cert: string; key: string; caPem: string }> {
  const path = (name: string) => `${dir}/${name}`;
  const openssl = async (args: string[]) => {
    const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
    if (out.code !== 0) throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    path("ca.key"),
    "-out",
    path("ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=Empath test CA",
  ]);
  await openssl([
    "req",
    "-new",
    ...ec,
    "-keyout",
    path("key.pem"),
    "-out",
    path("server.csr"),
    "-subj",
    "/CN=localhost",
  ]);
  await Deno.writeTextFile(
    path("server.ext"),
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    path("server.csr"),
    "-CA",
    path("ca.pem"),
    "-CAkey",
    path("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    path("server.ext"),
    "-out",
    path("cert.pem"),
  ]);
  return { cert: path("cert.pem"), key: path("key.pem"), caPem: await Deno.readTextFile(path("ca.pem")) };
}
