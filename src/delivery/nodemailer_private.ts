/**
 * Every access to private fields of nodemailer's `SMTPConnection`, in one place.
 *
 * These fields are not part of nodemailer's API. They were read from the source of
 * **nodemailer@10.6.0** (the version pinned in deno.json, `lib/smtp-connection/index.js`);
 * check each accessor here when upgrading. No other file touches `_fields` of
 * nodemailer objects.
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
import type SMTPConnection from "nodemailer/lib/smtp-connection";

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
