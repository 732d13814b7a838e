/**
 * DANE for SMTP (RFC 7672): which TLSA records are usable, and whether a server's
 * certificate chain matches them.
 *
 * - DANE-EE(3): the server's own certificate (selector 0) or its public key (selector 1)
 *   matches, exactly or by SHA-256/SHA-512; no name or expiry check (RFC 7672 3.1.1).
 * - DANE-TA(2): a certificate the server sent above its own matches, the chain from the
 *   server's certificate up to it verifies, and the server's certificate names the MX
 *   host (or the next-hop domain) (RFC 7672 3.1.2, 3.2.2).
 * - PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP (RFC 7672 3.1.3), as are unknown
 *   selectors and matching types. A TLSA RRset with no usable record means "TLS, but no
 *   authentication" (RFC 7672 2.2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { usableTlsa } from "./dane.ts"; // @ts-ignore deno#26900
 * assert.equal(usableTlsa([{ usage: 1, selector: 0, matchingType: 1, data: new Uint8Array(32) }]).length, 0);
 * ```
 * @module
 */
import { createHash, X509Certificate } from "node:crypto";
import { Buffer } from "node:buffer";
import type { TlsaRecord } from "./resolver.ts";

/** The records Empath can use: usage 2 or 3, selector 0 or 1, matching type 0, 1 or 2. */
export function usableTlsa(records: TlsaRecord[]): TlsaRecord[] {
  return records.filter((r) =>
    (r.usage === 2 || r.usage === 3) && (r.selector === 0 || r.selector === 1) && r.matchingType <= 2
  );
}

/** The outcome of a DANE check. */
export interface DaneResult {
  ok: boolean;
  /** Which record matched, or why none did (for logs and TLS-RPT). */
  detail: string;
}

function selected(cert: X509Certificate, selector: number): Buffer {
  return selector === 0 ? Buffer.from(cert.raw) : cert.publicKey.export({ type: "spki", format: "der" }) as Buffer;
}

function associated(data: Buffer, matchingType: number): Buffer {
  if (matchingType === 1) return createHash("sha256").update(data).digest();
  if (matchingType === 2) return createHash("sha512").update(data).digest();
  return data;
}

/** Whether `record` matches `cert`. */
export function tlsaMatches(record: TlsaRecord, cert: X509Certificate): boolean {
  return Buffer.from(record.data).equals(associated(selected(cert, record.selector), record.matchingType));
}

/** True when `cert` carries one of `names` as a DNS subjectAltName (a wildcard covers one left-most label). */
export function certificateNames(cert: X509Certificate, names: string[]): boolean {
  const san = (cert.subjectAltName ?? "").split(/,\s*/).filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4).toLowerCase());
  return names.some((raw) => {
    const name = raw.toLowerCase().replace(/\.$/, "");
    return san.some((p) => p === name || (p.startsWith("*.") && name.slice(name.indexOf(".") + 1) === p.slice(2)));
  });
}

/**
 * Checks a server's chain (DER, server certificate first) against usable TLSA records.
 * `names`: the reference identifiers for DANE-TA (the MX host name, and the domain).
 */
export function checkDane(records: TlsaRecord[], chainDer: Uint8Array[], names: string[]): DaneResult {
  const usable = usableTlsa(records);
  if (usable.length === 0) return { ok: false, detail: "no usable TLSA records" };
  const chain = chainDer.map((der) => new X509Certificate(Buffer.from(der)));
  const leaf = chain[0];
  if (!leaf) return { ok: false, detail: "the server sent no certificate" };
  for (const r of usable.filter((r) => r.usage === 3)) {
    if (tlsaMatches(r, leaf)) return { ok: true, detail: `DANE-EE(3 ${r.selector} ${r.matchingType}) matched` };
  }
  for (const r of usable.filter((r) => r.usage === 2)) {
    const at = chain.findIndex((c, i) => i > 0 && tlsaMatches(r, c));
    if (at < 0) continue;
    let linked = true;
    for (let i = 0; i < at; i++) {
      const child = chain[i]!;
      const parent = chain[i + 1]!;
      if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) linked = false;
    }
    if (!linked) return { ok: false, detail: "DANE-TA(2) matched a certificate the chain does not lead to" };
    if (!certificateNames(leaf, names)) {
      return { ok: false, detail: `DANE-TA(2) matched, but the certificate names none of ${names.join(", ")}` };
    }
    return { ok: true, detail: `DANE-TA(2 ${r.selector} ${r.matchingType}) matched` };
  }
  return { ok: false, detail: `the certificate matches none of ${usable.length} usable TLSA records` };
}
