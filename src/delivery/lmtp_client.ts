/**
 * A small LMTP client (RFC 2033) over a Unix socket or TCP: LHLO once, then any
 * number of transactions on the same connection. After DATA the server answers
 * once per accepted recipient, in RCPT order; every one of those replies becomes
 * that recipient's result.
 *
 * Why not nodemailer's `SMTPConnection` with `lmtp: true` (read in nodemailer@10.6.0,
 * `_createSendStream` / `_actionLMTPStream`): it keeps only the LAST recipient's reply
 * text (accepted recipients share it), and when the connection drops between two
 * per-recipient replies it reports an error for the whole send, losing the 250s
 * already received (those recipients would be delivered twice on retry).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type net from "node:net";
 * import { Readable } from "node:stream";
 * import { SMTPServer } from "smtp-server";
 * import { LmtpSession, parseLmtpTarget } from "./lmtp_client.ts"; // @ts-ignore deno#26900
 *
 * // An LMTP server to talk to (Dovecot: "unix:/run/dovecot/lmtp").
 * const peer = new SMTPServer({ lmtp: true, authOptional: true, disabledCommands: ["STARTTLS"], onData: (stream, _s, done) => stream.on("end", done).resume() });
 * await new Promise<void>((resolve) => peer.listen(0, "127.0.0.1", resolve));
 * const target = parseLmtpTarget(`127.0.0.1:${(peer.server.address() as net.AddressInfo).port}`)!;
 *
 * const session = await LmtpSession.open(target, { lhloName: "mx.example", timeoutMs: 30_000 });
 * const data = "Subject: hi\r\n\r\nbody\r\n";
 * const replies = await session.send({ sender: "a@example.com", recipients: [{ address: "b@example.com" }], size: data.length, open: () => Readable.from([new TextEncoder().encode(data)]) });
 * assert.deepEqual(replies.map((r) => [r.address, r.code]), [["b@example.com", 250]]); // one reply per recipient
 * await session.close();
 * await new Promise<void>((resolve) => peer.close(() => resolve()));
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import type { OutboundMessage } from "./transport.ts";

/** Where the LMTP server listens. */
export type LmtpTarget = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/** Parses `"unix:/path"` or `"host:port"` (`"[::1]:24"`); undefined when neither. */
export function parseLmtpTarget(text: string): LmtpTarget | undefined {
  const t = text.trim();
  if (t.startsWith("unix:")) return t.length > 5 ? { kind: "unix", path: t.slice(5) } : undefined;
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(t);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) return undefined;
  return { kind: "tcp", host: (m[1] ?? m[2])!, port };
}

/** The target as shown in logs ("unix:/run/dovecot/lmtp", "127.0.0.1:24"). */
export function formatLmtpTarget(t: LmtpTarget): string {
  return t.kind === "unix" ? `unix:${t.path}` : `${t.host.includes(":") ? `[${t.host}]` : t.host}:${t.port}`;
}

/** Why an LMTP session failed; `phase` says how far the transaction got. */
export class LmtpError extends Error {
  constructor(
    message: string,
    readonly code: "CONNECT" | "TIMEOUT" | "CLOSED" | "PROTOCOL",
    /** "connect" | "greeting" | "lhlo" | "envelope" | "data" | "replies". */
    readonly phase: string,
    /** Replies already received after DATA (recipients known to be delivered or refused). */
    readonly partial: LmtpRecipientReply[] = [],
  ) {
    super(message);
    this.name = "LmtpError";
  }
}

/** One recipient's reply: to RCPT when refused there, else its own reply after DATA. */
export interface LmtpRecipientReply {
  address: string;
  code: number;
  reply: string;
}

/** Session settings. */
export interface LmtpSessionOptions {
  lhloName: string;
  /** Per reply (greeting, each command, each post-DATA reply). */
  timeoutMs: number;
}

interface Reply {
  code: number;
  text: string;
}

const enc = new TextEncoder();
const CRLF_DOT_CRLF = enc.encode(".\r\n");
/** Largest single write of message data (the final dot is added to the last one). */
const DATA_WRITE_BYTES = 64 * 1024;
/** A multi-line reply on one line (for logs, the queue record and DSNs). */
const flat = (text: string) => text.replace(/\r\n\d{3}[ -]?/g, " ");

/** One connection to an LMTP server. */
export class LmtpSession {
  #conn: Deno.Conn;
  #buf = "";
  /** Read buffer, one per session. */
  readonly #chunk = new Uint8Array(16 * 1024);
  #closed = false;
  #extensions = new Set<string>();
  /** Transactions completed on this connection. */
  messagesSent = 0;

  private constructor(conn: Deno.Conn, readonly target: LmtpTarget, readonly options: LmtpSessionOptions) {
    this.#conn = conn;
  }

  /** Connects, reads the greeting and sends LHLO. */
  static async open(target: LmtpTarget, options: LmtpSessionOptions): Promise<LmtpSession> {
    let conn: Deno.Conn;
    try {
      conn = target.kind === "unix"
        ? await Deno.connect({ transport: "unix", path: target.path })
        : await Deno.connect({ hostname: target.host, port: target.port });
    } catch (err) {
      throw new LmtpError(
        `cannot connect to ${formatLmtpTarget(target)}: ${(err as Error).message}`,
        "CONNECT",
        "connect",
      );
    }
    if (target.kind === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
    const session = new LmtpSession(conn, target, options);
    try {
      const greeting = await session.#read("greeting");
      if (greeting.code !== 220) throw new LmtpError(`greeting: ${greeting.text}`, "PROTOCOL", "greeting");
      await session.#write(`LHLO ${options.lhloName}\r\n`, "lhlo");
      const lhlo = await session.#read("lhlo");
      if (lhlo.code !== 250) throw new LmtpError(`LHLO: ${lhlo.text}`, "PROTOCOL", "lhlo");
      for (const line of lhlo.text.split("\r\n").slice(1)) {
        session.#extensions.add(line.slice(4).split(" ")[0]!.toUpperCase());
      }
      return session;
    } catch (err) {
      session.#shut();
      throw err;
    }
  }

  /** True until the connection failed or was closed. */
  get isUsable(): boolean {
    return !this.#closed;
  }

  /**
   * One transaction. Resolves with a reply per recipient; rejects with {@link LmtpError}
   * when the connection fails (its `partial` holds the post-DATA replies already read).
   */
  async send(message: OutboundMessage): Promise<LmtpRecipientReply[]> {
    const ext = this.#extensions;
    const mailParams = [
      ext.has("SIZE") ? ` SIZE=${message.size}` : "",
      message.eightBit && ext.has("8BITMIME") ? " BODY=8BITMIME" : "",
      message.smtpUtf8 && ext.has("SMTPUTF8") ? " SMTPUTF8" : "",
      message.ret && ext.has("DSN") ? ` RET=${message.ret}` : "",
      message.envid && ext.has("DSN") ? ` ENVID=${message.envid}` : "",
    ].join("");
    const commands = [`MAIL FROM:<${message.sender}>${mailParams}\r\n`];
    for (const r of message.recipients) {
      const dsn = ext.has("DSN")
        ? (r.notify?.length ? ` NOTIFY=${r.notify.join(",")}` : "") + (r.orcpt ? ` ORCPT=${r.orcpt}` : "")
        : "";
      commands.push(`RCPT TO:<${r.address}>${dsn}\r\n`);
    }
    commands.push("DATA\r\n");
    const replies: Reply[] = [];
    if (ext.has("PIPELINING")) {
      await this.#write(commands.join(""), "envelope");
      for (let i = 0; i < commands.length; i++) replies.push(await this.#read("envelope"));
    } else {
      for (const command of commands) {
        await this.#write(command, "envelope");
        const reply = await this.#read("envelope");
        replies.push(reply);
        if (replies.length === 1 && reply.code !== 250) break;
      }
    }
    const mail = replies[0]!;
    const results: LmtpRecipientReply[] = [];
    const accepted: string[] = [];
    message.recipients.forEach((r, i) => {
      const reply = mail.code === 250 ? replies[i + 1] : mail;
      if (!reply) return;
      if (reply.code >= 200 && reply.code < 300) accepted.push(r.address);
      else results.push({ address: r.address, code: reply.code, reply: flat(reply.text) });
    });
    const data = replies[replies.length - 1]!;
    if (accepted.length === 0 || data.code !== 354) {
      // Nothing to send: either every recipient was refused or DATA was; fail the accepted ones with DATA's reply.
      for (const address of accepted) results.push({ address, code: data.code, reply: flat(data.text) });
      if (data.code === 354) await this.#write(".\r\n", "data").then(() => this.#read("data"));
      if (mail.code === 250) await this.reset();
      return results;
    }
    await this.#sendData(message);
    const partial: LmtpRecipientReply[] = [];
    for (const address of accepted) {
      try {
        const reply = await this.#read("replies");
        partial.push({ address, code: reply.code, reply: flat(reply.text) });
      } catch (err) {
        const e = err as LmtpError;
        throw new LmtpError(e.message, e.code, "replies", partial);
      }
    }
    this.messagesSent++;
    return [...results, ...partial];
  }

  /** RSET (after a transaction that did not reach DATA). */
  async reset(): Promise<void> {
    await this.#write("RSET\r\n", "envelope");
    const reply = await this.#read("envelope");
    if (reply.code !== 250) throw new LmtpError(`RSET: ${reply.text}`, "PROTOCOL", "envelope");
  }

  /** QUIT and close (never throws). */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#write("QUIT\r\n", "quit");
      await this.#read("quit");
    } catch { /* closing anyway */ }
    this.#shut();
  }

  #shut() {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  /**
   * Streams the message: CRLF line ends, dot-stuffed, then the final dot. Output is gathered
   * into writes of up to {@link DATA_WRITE_BYTES} and the final dot rides on the last one, so a
   * message of that size or less costs one `write(2)` (each write wakes the server: on a busy
   * host the syscalls and wake-ups were the LMTP path's largest cost).
   */
  async #sendData(message: OutboundMessage): Promise<void> {
    let lineStart = true;
    let lastCr = false;
    let out = new Uint8Array(DATA_WRITE_BYTES + 5);
    let n = 0;
    for await (const chunk of message.open()) {
      const input = chunk as Uint8Array;
      for (let i = 0; i < input.length; i++) {
        if (n + 2 > DATA_WRITE_BYTES) {
          await this.#writeBytes(out.subarray(0, n), "data");
          out = new Uint8Array(DATA_WRITE_BYTES + 5); // the write may still hold the old one
          n = 0;
        }
        const b = input[i]!;
        if (lineStart && b === 0x2e) out[n++] = 0x2e;
        if (b === 0x0a && !lastCr) out[n++] = 0x0d;
        out[n++] = b;
        lastCr = b === 0x0d;
        lineStart = b === 0x0a;
      }
    }
    if (!lineStart) {
      out[n++] = 0x0d;
      out[n++] = 0x0a;
    }
    out.set(CRLF_DOT_CRLF, n); // room kept: DATA_WRITE_BYTES + 5 ≥ n + 2 + 3
    await this.#writeBytes(out.subarray(0, n + CRLF_DOT_CRLF.length), "data");
  }

  #write(text: string, phase: string): Promise<void> {
    return this.#writeBytes(enc.encode(text), phase);
  }

  async #writeBytes(bytes: Uint8Array, phase: string): Promise<void> {
    if (this.#closed) throw new LmtpError("connection closed", "CLOSED", phase);
    try {
      let off = 0;
      while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    } catch (err) {
      this.#shut();
      throw new LmtpError(`write failed: ${(err as Error).message}`, "CLOSED", phase);
    }
  }

  /** Reads one (possibly multi-line) reply within the timeout (no timer while the reply is buffered already). */
  async #read(phase: string): Promise<Reply> {
    const lines: string[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timeout: Promise<never> | undefined;
    try {
      while (true) {
        const eol = this.#buf.indexOf("\r\n");
        if (eol >= 0) {
          const line = this.#buf.slice(0, eol);
          this.#buf = this.#buf.slice(eol + 2);
          lines.push(line);
          if (!/^\d{3}[ -]/.test(line) && !/^\d{3}$/.test(line)) {
            this.#shut();
            throw new LmtpError(`malformed reply: ${line.slice(0, 100)}`, "PROTOCOL", phase);
          }
          if (line[3] !== "-") return { code: Number(line.slice(0, 3)), text: lines.join("\r\n") };
          continue;
        }
        if (this.#closed) throw new LmtpError("connection closed", "CLOSED", phase);
        timeout ??= new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            this.#shut();
            reject(new LmtpError(`no reply within ${this.options.timeoutMs} ms`, "TIMEOUT", phase));
          }, this.options.timeoutMs);
        });
        let n: number | null;
        try {
          n = await Promise.race([this.#conn.read(this.#chunk), timeout]);
        } catch (err) {
          this.#shut();
          if (err instanceof LmtpError) throw err;
          throw new LmtpError(`read failed: ${(err as Error).message}`, "CLOSED", phase);
        }
        if (n === null) {
          this.#shut();
          throw new LmtpError("connection closed by the server", "CLOSED", phase);
        }
        this.#buf += Buffer.from(this.#chunk.subarray(0, n)).toString("latin1");
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
