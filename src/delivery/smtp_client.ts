/**
 * One outbound SMTP session over nodemailer's SMTPConnection: EHLO (HELO
 * fallback), STARTTLS per policy, SIZE/8BITMIME/SMTPUTF8/PIPELINING/DSN as
 * offered, and a reply recorded for every recipient.
 *
 * nodemailer takes DSN NOTIFY/ORCPT per envelope, not per recipient, so
 * recipients with different DSN parameters go in separate transactions on the
 * same connection (RSET between). Most mail has none and needs one transaction.
 * nodemailer times phases with connection, greeting and socket (idle) timeouts;
 * MAIL/RCPT/DATA/end-of-data share the idle timeout, set to the longest of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type net from "node:net";
 * import { Readable } from "node:stream";
 * import { SMTPServer } from "smtp-server";
 * import { SmtpSession } from "./smtp_client.ts"; // @ts-ignore deno#26900
 *
 * // A receiving server to talk to.
 * const peer = new SMTPServer({ authOptional: true, disabledCommands: ["STARTTLS"], onData: (stream, _s, done) => stream.on("end", done).resume() });
 * await new Promise<void>((resolve) => peer.listen(0, "127.0.0.1", resolve));
 * const port = (peer.server.address() as net.AddressInfo).port;
 *
 * const session = await SmtpSession.open({
 *   host: "127.0.0.1",
 *   port,
 *   tls: "opportunistic",
 *   verifyCertificates: true,
 *   heloName: "mx.example",
 *   timeouts: { connect: 30_000, greeting: 300_000, data: 180_000 },
 * });
 * const data = "Subject: hi\r\n\r\nbody\r\n";
 * const result = await session.send({ sender: "a@example.com", recipients: [{ address: "b@example.net" }], size: data.length, open: () => Readable.from([new TextEncoder().encode(data)]) });
 * assert.deepEqual(result.recipients.map((r) => [r.address, r.outcome]), [["b@example.net", "delivered"]]);
 * await session.close();
 * await new Promise<void>((resolve) => peer.close(() => resolve()));
 * ```
 * @module
 */
import { Transform } from "node:stream";
import { GcHint } from "../util/gc_hint.ts";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { isAscii } from "../util/address.ts";
import {
  destroySocket,
  envelopeRejectedErrors,
  installFastDotStuffing,
  isDestroyed,
  maxAllowedSize,
  type NodemailerError,
  onTlsUpgrade,
  peerCertificateChain,
  setNoDelay,
  supportedExtensions,
} from "./nodemailer_private.ts";
import type { OutboundMessage } from "./transport.ts";
import type { SmtpTrace } from "../observability/mod.ts";
import { clientTraceLogger } from "./trace_logger.ts";

export type { OutboundMessage };

// DATA: stored messages are CRLF-normalised, so nodemailer's per-byte encoder is skipped for clean chunks (#18).
installFastDotStuffing();

/** From this size on, relaying counts streamed bytes for {@link GcHint}. */
const LARGE_MESSAGE = 8 * 1024 * 1024;

/** A pass-through stream that feeds a {@link GcHint} with the bytes it carries. */
function countingForGc(): Transform {
  const hint = new GcHint();
  return new Transform({
    transform(chunk: Uint8Array, _encoding, cb) {
      hint.add(chunk.length);
      cb(null, chunk);
    },
  });
}

/** Client timeouts in ms (RFC 5321 4.5.3.2 defaults are applied by the caller). */
export interface ClientTimeouts {
  connect: number;
  greeting: number;
  mail?: number;
  rcpt?: number;
  data: number;
  dataEnd?: number;
  /** The STARTTLS handshake must be done within this long (absolute, so a dripping server cannot stretch it). */
  tlsHandshake?: number;
}

/** Where and how to connect. */
export interface DeliveryTarget {
  host: string;
  port: number;
  /** Live SMTP tracing (`empathctl trace smtp`); the conversation is reported while someone traces. */
  trace?: SmtpTrace;
  tls: "none" | "opportunistic" | "required";
  verifyCertificates: boolean;
  servername?: string;
  heloName: string;
  timeouts: ClientTimeouts;
  /** Extra CA certificates (PEM) to trust, for private PKI and tests. */
  ca?: string;
  /** Checks the server's chain after STARTTLS (DANE); returns why it failed, or undefined. */
  verifyPeer?: (chain: Uint8Array[]) => string | undefined;
  /** Part of the pool key: sessions checked under one policy are not reused under another. */
  policyKey?: string;
}

/** Per-recipient result of one send. */
export interface RecipientResult {
  address: string;
  code: number;
  reply: string;
  outcome: "delivered" | "deferred" | "failed";
}

/** Result of one send. */
export interface DeliveryResult {
  server: string;
  tls: boolean;
  /** The server advertised DSN. */
  dsn: boolean;
  recipients: RecipientResult[];
  durationMs: number;
}

/** A failure of the connection itself (not a reply about recipients). */
export class SmtpClientError extends Error {
  constructor(
    message: string,
    readonly code: "CONNECT" | "TIMEOUT" | "TLS" | "GREETING" | "PROTOCOL",
    readonly phase: string,
    readonly permanent: boolean,
    readonly smtpCode?: number,
    readonly reply?: string,
  ) {
    super(message);
    this.name = "SmtpClientError";
  }
}

type Conn = InstanceType<typeof SMTPConnection> & { secure: boolean };

const outcomeOf = (code: number): RecipientResult["outcome"] =>
  code >= 200 && code < 300 ? "delivered" : code >= 500 ? "failed" : "deferred";

function connectionError(err: NodemailerError, phase: string): SmtpClientError {
  const code = err.code === "ETIMEDOUT"
    ? "TIMEOUT"
    : err.code === "ETLS" || /TLS|certificate|self.signed|SSL/i.test(err.message)
    ? "TLS"
    : err.command === "CONN" && err.responseCode
    ? "GREETING"
    : err.code === "ECONNECTION" || err.code === "ESOCKET" || err.code === "EDNS"
    ? "CONNECT"
    : "PROTOCOL";
  const permanent = !!err.responseCode && err.responseCode >= 500 && code === "GREETING";
  return new SmtpClientError(err.message, code, phase, permanent, err.responseCode, err.response);
}

/** An open SMTP connection. */
export class SmtpSession {
  messagesSent = 0;
  /** True when the last transaction ended with a final reply to DATA (no RSET needed). */
  clean = true;
  #broken = false;
  #txFailed = false;
  private constructor(readonly target: DeliveryTarget, readonly conn: Conn) {
    conn.on("error", () => {
      this.#broken = true;
    });
    conn.on("end", () => {
      this.#broken = true;
    });
  }

  /** Connects, reads the greeting, says EHLO/HELO and negotiates TLS per policy. */
  static open(target: DeliveryTarget): Promise<SmtpSession> {
    const t = target.timeouts;
    const conn = new SMTPConnection(
      {
        host: target.host,
        port: target.port,
        secure: false,
        name: target.heloName,
        ignoreTLS: target.tls === "none",
        requireTLS: target.tls === "required",
        opportunisticTLS: target.tls === "opportunistic",
        tls: {
          rejectUnauthorized: target.verifyCertificates,
          servername: target.servername ?? (/^[\d.:]+$/.test(target.host) ? undefined : target.host),
          ca: target.ca,
        },
        connectionTimeout: t.connect,
        greetingTimeout: t.greeting,
        // No floor: a configured timeout below a minute is meant (a stalled server is given up on
        // after that long, not after 60 s).
        socketTimeout: Math.max(t.mail ?? 0, t.rcpt ?? 0, t.data, t.dataEnd ?? 0),
        logger: target.trace ? clientTraceLogger(target.trace, `${target.host}:${target.port}`) : false,
        debug: false,
        transactionLog: !!target.trace,
      } as ConstructorParameters<typeof SMTPConnection>[0],
    ) as Conn;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: NodemailerError) => {
        if (settled) return;
        settled = true;
        clearTimeout(handshakeTimer);
        conn.close();
        reject(connectionError(err, "connect"));
      };
      conn.once("error", fail);
      let handshakeTimer: ReturnType<typeof setTimeout> | undefined;
      if (t.tlsHandshake && t.tlsHandshake > 0) {
        onTlsUpgrade(conn, () => {
          handshakeTimer = setTimeout(() => {
            if (conn.secure) return;
            const err = new Error(`TLS handshake not done within ${t.tlsHandshake} ms`) as NodemailerError;
            err.code = "ETLS";
            destroySocket(conn); // close() would wait 5 s more for a graceful end from this peer
            fail(err);
          }, t.tlsHandshake);
        });
      }
      conn.connect(() => {
        clearTimeout(handshakeTimer);
        if (settled) return;
        setNoDelay(conn);
        conn.removeListener("error", fail);
        if (target.tls === "required" && !conn.secure) {
          settled = true;
          conn.close();
          return reject(
            new SmtpClientError(`${target.host}:${target.port} did not offer STARTTLS`, "TLS", "STARTTLS", false),
          );
        }
        const why = target.verifyPeer?.(conn.secure ? peerCertificateChain(conn) : []);
        if (why !== undefined) {
          settled = true;
          conn.close();
          return reject(new SmtpClientError(`${target.host}:${target.port}: DANE: ${why}`, "TLS", "DANE", false));
        }
        settled = true;
        resolve(new SmtpSession(target, conn));
      });
    });
  }

  get server(): string {
    return `${this.target.host}:${this.target.port}`;
  }

  get isUsable(): boolean {
    return !this.#broken && !isDestroyed(this.conn);
  }

  /** Extensions the server offered. */
  get extensions() {
    const ext = supportedExtensions(this.conn);
    return {
      size: maxAllowedSize(this.conn) || undefined,
      dsn: ext.includes("DSN"),
      smtpUtf8: ext.includes("SMTPUTF8"),
      eightBitMime: ext.includes("8BITMIME"),
      pipelining: ext.includes("PIPELINING"),
      requireTls: ext.includes("REQUIRETLS"),
      tls: this.conn.secure,
    };
  }

  /** Sends one message to its recipients; connection failures throw SmtpClientError. */
  async send(message: OutboundMessage): Promise<DeliveryResult> {
    const t0 = Date.now();
    const ext = this.extensions;
    const all = (code: number, reply: string) =>
      message.recipients.map((r) => ({ address: r.address, code, reply, outcome: outcomeOf(code) }));
    const done = (recipients: RecipientResult[]) => ({
      server: this.server,
      tls: ext.tls,
      dsn: ext.dsn,
      recipients,
      durationMs: Date.now() - t0,
    });
    if (ext.size && message.size > ext.size) {
      return done(all(552, `552 5.3.4 Message size ${message.size} exceeds ${this.server}'s limit of ${ext.size}`));
    }
    // Domains are A-labels already (canonicalised at intake); a UTF-8 local part or UTF-8 headers cannot
    // be downgraded (RFC 6531 3.4; no RFC 6857 rewriting here), so such mail bounces with 5.6.7.
    const utf8Envelope = !isAscii(message.sender) || message.recipients.some((r) => !isAscii(r.address));
    if ((message.smtpUtf8 || utf8Envelope) && !ext.smtpUtf8) {
      return done(all(553, `553 5.6.7 ${this.server} does not support SMTPUTF8, which this message needs (RFC 6531)`));
    }
    // RFC 8689 4.2: a REQUIRETLS message goes only over TLS to a server that offers REQUIRETLS.
    if (message.requireTls && !(ext.tls && ext.requireTls)) {
      return done(all(550, `550 5.7.30 REQUIRETLS support required, but ${this.server} does not offer it over TLS`));
    }
    const groups = new Map<string, OutboundMessage["recipients"]>();
    for (const r of message.recipients) {
      const key = ext.dsn ? JSON.stringify([r.notify ?? null, r.orcpt ?? null]) : "";
      groups.set(key, [...(groups.get(key) ?? []), r]);
    }
    const results: RecipientResult[] = [];
    this.clean = false;
    this.#txFailed = false;
    let first = true;
    for (const rcpts of groups.values()) {
      if (!first) await this.reset();
      first = false;
      results.push(...await this.#transaction(message, rcpts, ext.dsn));
    }
    this.messagesSent++;
    this.clean = !this.#txFailed;
    return done(results);
  }

  #transaction(
    message: OutboundMessage,
    rcpts: OutboundMessage["recipients"],
    dsn: boolean,
  ): Promise<RecipientResult[]> {
    const envelope: Record<string, unknown> = {
      from: message.sender,
      to: rcpts.map((r) => r.address),
      size: message.size,
      use8BitMime: !!message.eightBit,
    };
    if (message.requireTls) envelope.requireTLSExtensionEnabled = true;
    const first = rcpts[0];
    if (dsn && (message.ret || message.envid || first?.notify || first?.orcpt)) {
      envelope.dsn = { ret: message.ret, envid: message.envid, notify: first?.notify, orcpt: first?.orcpt };
    }
    // Large messages only: a counting pass that lets V8 free read buffers early (see GcHint).
    const stream = message.size < LARGE_MESSAGE ? message.open() : message.open().pipe(countingForGc());
    return new Promise((resolve, reject) => {
      this.conn.send(
        envelope as never,
        stream as never,
        ((err: NodemailerError | null, info?: Record<string, unknown>) => {
          const rejected = new Map<string, NodemailerError>();
          const errs = err?.rejectedErrors ?? (info?.rejectedErrors as NodemailerError[] | undefined) ??
            envelopeRejectedErrors(this.conn) ?? [];
          for (const e of errs) if (e.recipient) rejected.set(e.recipient, e);
          const fromRcpt = (address: string, code: number, reply: string): RecipientResult => {
            const r = rejected.get(address);
            const c = r?.responseCode ?? code;
            return { address, code: c, reply: r?.response ?? reply, outcome: outcomeOf(c) };
          };
          if (!err) {
            const reply = String(info?.response ?? "250");
            const code = Number(/^\d{3}/.exec(reply)?.[0] ?? 250);
            return resolve(rcpts.map((r) => fromRcpt(r.address, code, reply)));
          }
          if (err.responseCode) {
            // A reply to MAIL, RCPT (all refused) or DATA: it answers every recipient not refused on its own.
            // The transaction may still be open (MAIL accepted, every RCPT refused): reuse needs RSET.
            this.#txFailed = true;
            this.#broken ||= err.responseCode === 421;
            return resolve(rcpts.map((r) => fromRcpt(r.address, err.responseCode!, err.response ?? err.message)));
          }
          this.#broken = true;
          reject(connectionError(err, err.command ?? "DATA"));
        }) as never,
      );
    });
  }

  /** RSET, ready for the next message. */
  reset(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.conn.reset((err: Error | null) => {
        if (err) {
          this.#broken = true;
          return reject(connectionError(err as NodemailerError, "RSET"));
        }
        resolve();
      });
    });
  }

  /** QUIT and close. Never throws. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.conn.close();
        resolve();
      }, 2000);
      this.conn.once("end", () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        this.conn.quit();
      } catch {
        clearTimeout(timer);
        this.conn.close();
        resolve();
      }
    });
  }
}
