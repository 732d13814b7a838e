/**
 * The RFC 5321 4.4 trace header, with the RFC 3848 protocol keyword and TLS
 * details in the Postfix style.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { receivedHeader } from "./received.ts"; // @ts-ignore deno#26900
 *
 * const field = receivedHeader({
 *   helo: "client.example",
 *   address: "192.0.2.1",
 *   hostname: "mx.example",
 *   id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R",
 *   esmtp: true,
 *   tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" },
 *   authenticated: false,
 *   recipient: "a@example.com",
 *   date: new Date(0),
 * });
 * assert.match(field, /^Received: from client\.example/);
 * ```
 * @module
 */
import { rfc5322Date } from "../util/date.ts";

/** What goes into a Received header. */
export interface ReceivedInfo {
  helo?: string;
  address: string;
  hostname: string;
  id: string;
  esmtp: boolean;
  tls?: { version?: string; cipher?: string; bits?: number };
  authenticated: boolean;
  /** Only set for single-recipient messages (RFC 5321 7.2: do not disclose BCCs). */
  recipient?: string;
  date: Date;
}

export { rfc5322Date };

/** Builds the complete header line(s), folded, ending in CRLF. */
export function receivedHeader(info: ReceivedInfo): string {
  const protocol = (info.esmtp ? "ESMTP" : "SMTP") + (info.tls ? "S" : "") + (info.authenticated ? "A" : "");
  // The client's EHLO name is the only client text here: printable ASCII without the characters that
  // delimit Received's comments and date (`(`, `)`, `;`, `\`), so it can neither break the line nor fake a clause.
  const helo = (info.helo ?? "unknown").replace(/[^\x21-\x7e]|[();\\]/g, "?").slice(0, 255);
  const addr = info.address.includes(":") ? `IPv6:${info.address}` : info.address;
  const lines = [`Received: from ${helo} ([${addr}])`, `\tby ${info.hostname} (Empath) with ${protocol} id ${info.id}`];
  if (info.tls) {
    const bits = info.tls.bits ? ` (${info.tls.bits}/${info.tls.bits} bits)` : "";
    lines.splice(1, 0, `\t(using ${info.tls.version ?? "TLS"} with cipher ${info.tls.cipher ?? "unknown"}${bits})`);
  }
  const recipient = info.recipient && /^[\x21-\x7e]+$/.test(info.recipient) ? `\tfor <${info.recipient}>` : "";
  if (recipient) lines.push(`${recipient}; ${rfc5322Date(info.date)}`);
  else lines[lines.length - 1] += `; ${rfc5322Date(info.date)}`;
  return lines.join("\r\n") + "\r\n";
}

/** A Message-ID for submission messages that lack one. */
export function messageId(id: string, hostname: string): string {
  return `<${id}@${hostname}>`;
}
