/**
 * RFC 8689 markers kept in a queue record's `metadata` (written at intake, read at
 * delivery), and the `TLS-Required:` header test.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tlsRequiredNo } from "./requiretls.ts"; // @ts-ignore deno#26900
 * assert.equal(tlsRequiredNo("Subject: x\r\nTLS-Required: No\r\n\r\n"), true);
 * ```
 * @module
 */

/** `metadata[REQUIRETLS_KEY] === true`: MAIL FROM carried REQUIRETLS. */
export const REQUIRETLS_KEY = "empath:requiretls";
/** `metadata[TLS_OPTIONAL_KEY] === true`: the message has `TLS-Required: No`. */
export const TLS_OPTIONAL_KEY = "empath:tls-required-no";

/** True when a header section carries `TLS-Required: No` (RFC 8689 5, case-insensitive). */
export function tlsRequiredNo(header: string): boolean {
  return /(?:^|\r?\n)TLS-Required[ \t]*:[ \t]*No[ \t]*(?:\r?\n|$)/i.test(header);
}
