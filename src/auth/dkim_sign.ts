/**
 * Outbound DKIM: picks the signing domain (From: domain, else the envelope sender's
 * domain when `fallback` is "envelope"), its active keys at `now`, and signs once with
 * every one of them. The caller prepends the returned fields to the stored message.
 * @module
 */
import { toBinary } from "./dkim_core.ts";
import type { Canonicalization } from "./dkim_core.ts";
import type { DkimKeySet } from "./dkim_keys.ts";
import type { DkimSigner } from "./sign_pool.ts";
import { addressDomain, fieldValue, headerEnd, parseFields } from "./headers.ts";
import { DEFAULT_OVERSIGNED, DEFAULT_SIGNED_HEADERS } from "../config/auth_schema.ts";

/** Signing settings (from `[dkim]`). */
export interface SignOptions {
  keySet: DkimKeySet;
  signer: DkimSigner;
  /** Clock; default `new Date()`. */
  now?: Date;
  /** MAIL FROM address ("" for the null sender). */
  envelopeFrom?: string;
  headers?: string[];
  oversign?: string[];
  canonicalization?: Canonicalization;
  fallback?: "envelope" | "none";
  /** Precomputed body hash (streaming signing); `message` is then the header section. */
  bodyHash?: string;
}

/** What signing did. */
export interface SignResult {
  /** DKIM-Signature fields to prepend (CRLF line ends), "" when unsigned. */
  headers: string;
  /** Signing domain, when signed. */
  domain?: string;
  /** Selectors used, in configuration order. */
  selectors: string[];
  /** Why nothing was signed, when `headers` is "". */
  skipped?: "no-from" | "no-key";
}

/** The From: domain of a raw message, or undefined. */
export function fromDomain(message: Uint8Array): string | undefined {
  const header = toBinary(message.subarray(0, headerEnd(message)));
  const from = parseFields(header).find((f) => f.key === "from");
  return from ? addressDomain(fieldValue(from)) : undefined;
}

/** Signs `message` with every active key of its signing domain. */
export async function signMessage(message: Uint8Array, options: SignOptions): Promise<SignResult> {
  const now = options.now ?? new Date();
  const from = fromDomain(message);
  if (!from) return { headers: "", selectors: [], skipped: "no-from" };
  let domain = from;
  let keys = domain ? options.keySet.activeKeys(domain, now) : [];
  if (keys.length === 0 && (options.fallback ?? "envelope") === "envelope" && options.envelopeFrom) {
    const envDomain = addressDomain(options.envelopeFrom);
    if (envDomain) {
      domain = envDomain;
      keys = options.keySet.activeKeys(envDomain, now);
    }
  }
  if (keys.length === 0) return { headers: "", selectors: [], skipped: "no-key" };
  const headers = await options.signer.sign({
    message,
    keys: keys.map((k) => ({ domain: k.domain, selector: k.selector, type: k.type, privateKeyPem: k.privateKeyPem })),
    headerList: options.headers ?? DEFAULT_SIGNED_HEADERS,
    oversign: options.oversign ?? DEFAULT_OVERSIGNED,
    canonicalization: options.canonicalization ?? "relaxed/relaxed",
    signTime: Math.floor(now.getTime() / 1000),
    bodyHash: options.bodyHash,
  });
  return { headers, domain, selectors: keys.map((k) => k.selector) };
}
