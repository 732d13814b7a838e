/**
 * Empath's own checks of MAIL FROM and RCPT TO, run before the session hooks see the
 * address. Each address is canonicalised once here (UTS-46 A-label domain, see
 * util/address.ts) and smtp-server keeps the rewritten object, so relay policy, routing,
 * `[delivery.domains]`, metrics and DSNs all see one spelling of every domain.
 *
 * - MAIL FROM: syntax, then {@link checkSender} for clients that may not relay.
 * - RCPT TO: domainless `postmaster`, syntax, the relay policy; after the hooks,
 *   recipient validation for local domains ({@link RecipientCheck}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalizeEnvelopeAddress } from "./envelope_gate.ts"; // @ts-ignore deno#26900
 *
 * const address = { address: "bob@ＥＸＡＭＰＬＥ.com" };
 * assert.equal(canonicalizeEnvelopeAddress(address, "recipient"), null);
 * assert.equal(address.address, "bob@example.com"); // rewritten in place
 * ```
 * @module
 */
import { canonicalAddress } from "../util/address.ts";
import { reject, type SmtpError } from "./errors.ts";
import type { RelayPolicy } from "./policy.ts";
import type { RecipientCheck } from "./recipient_check.ts";
import { checkSender, type SenderDomainLookup } from "./sender_checks.ts";

/**
 * Rewrites `address.address` to its canonical form. Null when done (or when there is no domain,
 * which the relay policy answers for recipients), else the 501 to send.
 */
export function canonicalizeEnvelopeAddress(
  address: { address: string },
  role: "sender" | "recipient",
): SmtpError | null {
  if (address.address === "") return null;
  const c = canonicalAddress(address.address);
  if (c.ok) {
    address.address = c.address;
    return null;
  }
  if (c.reason === "no domain" && role === "recipient") return null;
  return role === "sender"
    ? reject(501, "5.1.7", `Bad sender address syntax: ${c.reason}`, "SENDER_SYNTAX")
    : reject(501, "5.1.3", `Bad recipient address syntax: ${c.reason}`, "RCPT_SYNTAX");
}

/** What the sender gate needs. */
export interface SenderGateOptions {
  policy: RelayPolicy;
  client: { address: string; authenticated: boolean };
  /** Checks the sender domain of outside clients (absent: relay.reject_unknown_sender_domain = false). */
  lookup?: SenderDomainLookup;
}

/** Canonicalises the sender and checks it; null when it may proceed. */
export function gateSender(address: { address: string }, options: SenderGateOptions): Promise<SmtpError | null> {
  const bad = canonicalizeEnvelopeAddress(address, "sender");
  if (bad) return Promise.resolve(bad);
  return checkSender(address.address, { trusted: options.policy.mayRelay(options.client), lookup: options.lookup });
}

/** Resolves a domainless postmaster, canonicalises and applies the relay policy; null when it may proceed. */
export function gateRecipient(
  address: { address: string },
  policy: RelayPolicy,
  client: { address: string; authenticated: boolean },
): SmtpError | null {
  // smtp-server stores this very object as the recipient: the rewritten address is what gets queued.
  address.address = policy.resolveRecipient(address.address);
  return canonicalizeEnvelopeAddress(address, "recipient") ?? policy.checkRecipient(address.address, client);
}

/** Recipient validation for a local domain after the hooks; `known` is a hook's "known" verdict. */
export function validateLocalRecipient(
  address: string,
  policy: RelayPolicy,
  check: RecipientCheck | undefined,
  known: boolean,
): Promise<SmtpError | null> {
  const at = address.lastIndexOf("@");
  if (!check || at < 0 || !policy.isLocalDomain(address.slice(at + 1))) return Promise.resolve(null);
  return check.check(address, known);
}
