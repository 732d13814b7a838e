/**
 * Envelope address canonicalisation: one form of every domain, decided once at MAIL/RCPT
 * and used everywhere after (relay policy, routing, `[delivery.domains]`, metrics, DSNs).
 *
 * The canonical domain is the UTS-46 ASCII form (RFC 5891 A-labels), lower case, without a
 * trailing dot: fullwidth letters are mapped, soft hyphens and other ignored code points are
 * removed, `Bücher.Example` becomes `xn--bcher-kva.example`. Address literals (`[192.0.2.1]`,
 * `[IPv6:…]`) are kept as written. The local part is never changed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalAddress, canonicalDomain } from "./address.ts"; // @ts-ignore deno#26900
 *
 * assert.equal(canonicalDomain("ｅｘａｍｐｌｅ.COM."), "example.com");
 * const c = canonicalAddress("Jo@Bücher.example");
 * assert.equal(c.ok && c.address, "Jo@xn--bcher-kva.example");
 * ```
 * @module
 */
import { domainToASCII, domainToUnicode } from "node:url";

/** An address split at its last "@". */
export interface AddressParts {
  local: string;
  domain: string;
}

/** The result of canonicalising an address. */
export type CanonicalAddress =
  | { ok: true; address: string; local: string; domain: string; literal: boolean }
  | { ok: false; reason: string };

const ASCII = /^\p{ASCII}*$/u;

/** True when the text is 7-bit US-ASCII. */
export function isAscii(text: string): boolean {
  return ASCII.test(text);
}

/** Splits "local@domain" at the last "@" (no "@": all local part, empty domain). */
export function splitAt(address: string): AddressParts {
  const at = address.lastIndexOf("@");
  if (at < 0) return { local: address, domain: "" };
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

/** True for an RFC 5321 address literal such as `[192.0.2.1]` or `[IPv6:2001:db8::1]`. */
export function isAddressLiteral(domain: string): boolean {
  return domain.startsWith("[") && domain.endsWith("]");
}

/**
 * The canonical form of a domain: UTS-46 A-labels, lower case, no trailing dot.
 * Returns "" when the name is not a valid IDNA domain (e.g. a broken `xn--` label).
 */
export function canonicalDomain(domain: string): string {
  const trimmed = domain.replace(/\.$/, "");
  if (isAddressLiteral(trimmed)) return trimmed;
  if (trimmed === "") return "";
  const lower = trimmed.toLowerCase();
  // Plain LDH names need no IDNA processing (and underscores, legal in DNS, survive).
  if (/^[a-z0-9_.-]+$/.test(lower) && !/(^|\.)xn--/.test(lower)) return lower;
  return domainToASCII(lower).replace(/\.$/, "");
}

/** The Unicode (U-label) form of a canonical domain, for display and SMTPUTF8 peers. */
export function unicodeDomain(domain: string): string {
  if (isAddressLiteral(domain) || !/(^|\.)xn--/.test(domain)) return domain;
  return domainToUnicode(domain) || domain;
}

/** Canonicalises the domain of an address; the local part is kept byte for byte. */
export function canonicalAddress(address: string): CanonicalAddress {
  const { local, domain } = splitAt(address);
  if (!domain) return { ok: false, reason: "no domain" };
  const canonical = canonicalDomain(domain);
  if (!canonical) return { ok: false, reason: `${domain} is not a valid domain name (IDNA)` };
  return {
    ok: true,
    address: `${local}@${canonical}`,
    local,
    domain: canonical,
    literal: isAddressLiteral(canonical),
  };
}

/** The domain of an address in canonical form ("" for none or invalid). */
export function domainOf(address: string): string {
  const { domain } = splitAt(address);
  return domain ? canonicalDomain(domain) : "";
}
