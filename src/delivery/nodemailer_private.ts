/**
 * Every access to private fields of nodemailer's `SMTPConnection`, in one place.
 *
 * These fields are not part of nodemailer's API. They were read from the source of
 * **nodemailer@10.6.0** (the version pinned in deno.json, `lib/smtp-connection/index.js`);
 * check each accessor here when upgrading. No other file touches `_fields` of
 * nodemailer objects.
 *
 * The same goes for {@link installFastDotStuffing}, which patches the DATA encoder
 * (`DataStream`, `dist/esm/smtp-connection/data-stream.js` of nodemailer@10.6.0).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import SMTPConnection from "nodemailer/lib/smtp-connection";
 * import { isDestroyed, maxAllowedSize, supportedExtensions } from "./nodemailer_private.ts"; // @ts-ignore deno#26900
 *
 * const conn = new SMTPConnection({ host: "127.0.0.1", port: 25 }); // not connected yet
 * // After conn.connect() and the EHLO reply: ["PIPELINING", "8BITMIME", "SIZE", …]
 * assert.deepEqual(supportedExtensions(conn), []);
 * assert.equal(maxAllowedSize(conn), 0); // no SIZE announced (yet)
 * assert.equal(isDestroyed(conn), false);
 * ```
 * @module
 */
import { PassThrough, type Transform } from "node:stream";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { lineStartDots, stuffDots } from "./dot_stuff.ts";

/** An error as nodemailer reports it (public shape, documented loosely). */
export type NodemailerError = Error & {
  code?: string;
  response?: string;
  responseCode?: number;
  recipient?: string;
  rejectedErrors?: NodemailerError[];
  command?: string;
};

/** The private fields used, as nodemailer@10.6.0 names them. */
interface Private {
  _socket?: { setNoDelay?(v: boolean): void; destroy?(): void };
  _destroyed?: boolean;
  _supportedExtensions?: string[];
  _maxAllowedSize?: number;
  _envelope?: { rejectedErrors?: NodemailerError[] };
  _upgradeConnection?: (callback: (err: Error | null, secured?: boolean) => void) => void;
}

type Connection = InstanceType<typeof SMTPConnection>;

const priv = (conn: Connection) => conn as unknown as Private;

/** Turns off Nagle on the connection's socket (commands are small; replies should not wait). */
export function setNoDelay(conn: Connection): void {
  priv(conn)._socket?.setNoDelay?.(true);
}

/**
 * Destroys the connection's socket at once (the TLS socket after STARTTLS). `close()` ends it
 * gracefully instead and waits up to 5 s for the peer, which a peer stalling the TLS handshake
 * never answers.
 */
export function destroySocket(conn: Connection): void {
  priv(conn)._socket?.destroy?.();
}

/** True once nodemailer has destroyed the connection. */
export function isDestroyed(conn: Connection): boolean {
  return priv(conn)._destroyed === true;
}

/** Extension keywords from the server's EHLO reply (upper case). */
export function supportedExtensions(conn: Connection): string[] {
  return priv(conn)._supportedExtensions ?? [];
}

/** The SIZE the server announced, or 0 when it announced none. */
export function maxAllowedSize(conn: Connection): number {
  return priv(conn)._maxAllowedSize ?? 0;
}

/** Recipients refused in the current envelope (when the send callback does not carry them). */
export function envelopeRejectedErrors(conn: Connection): NodemailerError[] | undefined {
  return priv(conn)._envelope?.rejectedErrors;
}

/**
 * Calls `start` when the connection begins its STARTTLS handshake (wraps `_upgradeConnection`,
 * which nodemailer calls after the server's 220 to STARTTLS), so the caller can time the handshake.
 */
export function onTlsUpgrade(conn: Connection, start: () => void): void {
  const p = priv(conn);
  const upgrade = p._upgradeConnection;
  if (typeof upgrade !== "function") return;
  p._upgradeConnection = function (this: unknown, callback) {
    start();
    return upgrade.call(this, callback);
  };
}

/**
 * The certificate chain the server sent (DER, its own certificate first), read from the
 * TLS socket that `_socket` becomes after STARTTLS; empty before TLS.
 */
export function peerCertificateChain(conn: Connection): Uint8Array[] {
  type Peer = { raw?: Uint8Array; issuerCertificate?: Peer; fingerprint256?: string };
  const socket = priv(conn)._socket as { getPeerCertificate?: (detailed: boolean) => Peer } | undefined;
  const chain: Uint8Array[] = [];
  const seen = new Set<string>();
  let cert = socket?.getPeerCertificate?.(true);
  while (cert?.raw && !seen.has(cert.fingerprint256 ?? String(chain.length))) {
    seen.add(cert.fingerprint256 ?? String(chain.length));
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * nodemailer's DATA encoder (a `DataStream`): dot-stuffs, turns bare CR and bare LF into
 * CRLF, and counts bytes. The fields are its own, as nodemailer@10.6.0 keeps them.
 */
export type DataStream = Transform & {
  readonly inByteCount: number;
  readonly outByteCount: number;
  /** The last byte of the last non-empty chunk; `false` before the first. */
  readonly lastByte: number | false;
};

type TransformFn = (chunk: unknown, encoding: BufferEncoding, done: (err?: Error | null) => void) => void;

/** What the fast path reads and writes of a DataStream (the fields its `_transform` keeps). */
interface DataStreamInternals {
  inByteCount: number;
  outByteCount: number;
  lastByte: number | false;
  push(chunk: Uint8Array): boolean;
  _transform: TransformFn;
}

/**
 * The DataStream class. nodemailer's package "exports" do not list data-stream.js, so the
 * class is taken from the one place that makes an instance: `SMTPConnection#_createSendStream`,
 * called on a stand-in for a connection (only the fields it touches when not LMTP and not
 * debugging); the instance is unpiped and destroyed at once.
 */
function dataStreamClass(): { prototype: DataStreamInternals; new (): DataStream } {
  const socket = new PassThrough();
  const standIn = { _envelope: {}, options: {}, _responseActions: [], _socket: socket, logger: { info() {} } };
  const create = (SMTPConnection.prototype as unknown as { _createSendStream(cb: () => void): DataStream })
    ._createSendStream;
  const stream = create.call(standIn, () => {});
  stream.unpipe(socket);
  stream.destroy();
  socket.destroy();
  return stream.constructor as unknown as { prototype: DataStreamInternals; new (): DataStream };
}

const DataStreamClass = dataStreamClass();
/** nodemailer's own per-byte transform, kept before any patch. */
const originalTransform: TransformFn = DataStreamClass.prototype._transform;
let fastInstalled = false;

/**
 * Replaces `DataStream.prototype._transform` (nodemailer's per-byte loop over every outgoing
 * DATA byte) with one that uses {@link lineStartDots}: a chunk without bare CR or LF — the
 * usual case, as stored messages are CRLF-normalised — passes through unchanged, or with its
 * line-starting dots stuffed; any other chunk goes to the original. Output and the stream's
 * `inByteCount`, `outByteCount` and `lastByte` are exactly the original's for every input and
 * chunking. Idempotent; smtp_client.ts calls it once.
 */
export function installFastDotStuffing(): void {
  if (fastInstalled) return;
  fastInstalled = true;
  DataStreamClass.prototype._transform = function fastTransform(this: DataStreamInternals, chunk, encoding, done) {
    if (!(chunk instanceof Uint8Array) || chunk.length === 0) {
      return originalTransform.call(this, chunk, encoding, done);
    }
    const dots = lineStartDots(chunk, this.lastByte);
    if (!dots) return originalTransform.call(this, chunk, encoding, done);
    // What the original does when it inserts only dots (or nothing: the chunk itself goes out).
    const out = dots.length === 0 ? chunk : stuffDots(chunk, dots);
    this.inByteCount += chunk.length;
    this.outByteCount += out.length;
    this.push(out);
    this.lastByte = chunk[chunk.length - 1]!;
    done();
  };
}

/**
 * A new nodemailer DataStream, as `SMTPConnection` makes one per message; with `original`, one
 * that runs nodemailer's own per-byte transform even after {@link installFastDotStuffing}
 * (for tests and benchmarks to compare against).
 */
export function createDataStream(options: { original?: boolean } = {}): DataStream {
  const stream = new DataStreamClass();
  if (options.original) (stream as unknown as DataStreamInternals)._transform = originalTransform;
  return stream;
}
