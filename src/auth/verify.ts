/**
 * Inbound checks (SPF, DKIM, DMARC, ARC) with mailauth's `authenticate()`, DNS through
 * the injected resolver, one Authentication-Results field naming our authserv-id, and
 * the policy decision. The result is what modules see as `ctx.auth` and what the audit
 * log records.
 * @module
 */
import { authenticate } from "mailauth";
import { Buffer } from "node:buffer";
import { evaluatePolicy, type InboundPolicy, type PolicyDecision } from "./policy.ts";
import type { MailauthResolver } from "./dns.ts";
import { stripForgedAuthResults } from "./auth_results.ts";
import { parseFields } from "./headers.ts";

/** A key that seals (ARC) at check time. */
export interface SealKey {
  domain: string;
  selector: string;
  privateKeyPem: string;
}

/** Inputs of verifyMessage. */
export interface VerifyOptions {
  /** RFC 8601 authserv-id (our host name). */
  authservId: string;
  resolver: MailauthResolver;
  /** SMTP client address. */
  clientIp: string;
  /** EHLO/HELO argument. */
  helo?: string;
  /** MAIL FROM address ("" for the null sender). */
  mailFrom: string;
  policy?: InboundPolicy;
  /** Seal the message with ARC now (off unless `[auth.arc]` is enabled). */
  seal?: SealKey;
  /** Most SPF DNS lookups (RFC 7208: 10). */
  maxResolveCount?: number;
}

/** One DKIM signature's result. */
export interface DkimCheck {
  result: string;
  domain?: string;
  selector?: string;
  algorithm?: string;
  aligned: boolean;
  comment?: string;
}

/** Everything the checks found and decided. */
export interface AuthVerdict extends PolicyDecision {
  spf: { result: string; domain?: string; comment?: string };
  dkim: DkimCheck[];
  /** Undefined when DMARC could not be evaluated (no or several author domains). */
  dmarc?: { result: string; domain: string; policy: string; p?: string };
  arc: { result: string; comment?: string };
  /** `Authentication-Results: …` with CRLF, to prepend. */
  authenticationResults: string;
  /** `Received-SPF: …` with CRLF (optional to add). */
  receivedSpf?: string;
  /** ARC-Seal/ARC-Message-Signature/ARC-Authentication-Results fields when sealed, else "". */
  arcHeaders: string;
  /** Input for a later sealMessage (forwarding). */
  arcSealInput: { authResults: string; cv: string };
  /** Forged Authentication-Results fields (our id) removed from the message. */
  removedForged: number;
  /** The message with forged fields removed (the one to store, below the new headers). */
  message: Uint8Array;
}

const str = (v: unknown) => (typeof v === "string" ? v : undefined);

/** Runs every check on a received message and applies the policy. */
export async function verifyMessage(message: Uint8Array, options: VerifyOptions): Promise<AuthVerdict> {
  const cleaned = stripForgedAuthResults(message, options.authservId);
  const res = await authenticate(
    Buffer.from(cleaned.message),
    {
      ip: options.clientIp,
      helo: options.helo,
      sender: options.mailFrom,
      mta: options.authservId,
      resolver: options.resolver as never,
      disableBimi: true,
      maxResolveCount: options.maxResolveCount,
      seal: options.seal
        ? {
          signingDomain: options.seal.domain,
          selector: options.seal.selector,
          privateKey: options.seal.privateKeyPem,
        }
        : undefined,
    } as Parameters<typeof authenticate>[1],
  );

  const spfRes = res.spf || undefined;
  const spf = {
    result: spfRes?.status.result ?? "none",
    domain: spfRes?.domain,
    comment: spfRes?.status.comment,
  };
  const dkim: DkimCheck[] = (res.dkim.results ?? []).map((r) => ({
    result: r.status.result,
    domain: r.signingDomain,
    selector: r.selector,
    algorithm: r.algo,
    aligned: Boolean(r.status.aligned),
    comment: r.status.comment,
  }));
  const d = res.dmarc || undefined;
  const dmarc = d
    ? { result: d.status.result, domain: d.domain, policy: str(d.policy) ?? "none", p: str(d.p) }
    : undefined;
  const arc = {
    result: (res.arc && res.arc.status.result) || "none",
    comment: res.arc ? res.arc.status.comment : undefined,
  };

  const fields = parseFields(res.headers);
  const get = (key: string) => fields.filter((f) => f.key === key).map((f) => f.raw.replace(/\r?\n$/, "") + "\r\n");
  const authenticationResults = get("authentication-results")[0] ??
    `Authentication-Results: ${options.authservId}; none\r\n`;
  const arcHeaders = fields.filter((f) => f.key.startsWith("arc-")).map((f) => f.raw.replace(/\r?\n$/, "") + "\r\n")
    .join("");
  const arValue = authenticationResults.slice(authenticationResults.indexOf(":") + 1).trim();

  const decision = evaluatePolicy({ spf, dkim, dmarc }, options.policy);
  return {
    ...decision,
    spf,
    dkim,
    dmarc,
    arc,
    authenticationResults,
    receivedSpf: get("received-spf")[0],
    arcHeaders,
    arcSealInput: { authResults: arValue, cv: arc.result },
    removedForged: cleaned.removed,
    message: cleaned.message,
  };
}
