/**
 * Checks of the envelope sender of mail from clients that may not relay (outside
 * `relay_networks`, not authenticated), so that no bounce can be aimed at a third party
 * through Empath (backscatter):
 *
 * - an address literal as the sender's domain (`<x@[192.0.2.10]>`) is refused with
 *   `550 5.7.1`: a bounce to it would make Empath connect to a host the client chose;
 * - the sender's domain must be able to receive mail (Postfix `reject_unknown_sender_domain`):
 *   a domain that does not exist, or has neither MX nor address records, or publishes a null MX
 *   (RFC 7505), gets `550 5.1.8`; a DNS failure gets `450 4.1.8`, so the client tries again.
 *
 * The null reverse-path `<>` (bounces from other MTAs) is always accepted: Empath never
 * bounces a bounce. Trusted clients (relay networks, authenticated users) are not checked:
 * their bounces go to senders of their own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkSender } from "./sender_checks.ts"; // @ts-ignore deno#26900
 *
 * const lookup = () => Promise.resolve("ok" as const);
 * const refusal = await checkSender("x@[192.0.2.10]", { trusted: false, lookup });
 * assert.match(refusal?.message ?? "", /Sender address rejected/);
 * assert.equal(await checkSender("x@example.com", { trusted: false, lookup }), null);
 * ```
 * @module
 */
import { canonicalDomain, isAddressLiteral, splitAt } from "../util/address.ts";
import { reject, type SmtpError } from "./errors.ts";

/** What a DNS look-up of a sender domain found. */
export type SenderDomainState = "ok" | "nxdomain" | "no-mail" | "null-mx" | "tempfail";

/** Looks up whether a domain can receive mail (MX, else A/AAAA; RFC 5321 5.1). */
export type SenderDomainLookup = (domain: string) => Promise<SenderDomainState>;

/** Options for {@link checkSender}. */
export interface SenderCheckOptions {
  /** The client may relay (relay network or authenticated): no checks. */
  trusted: boolean;
  /** DNS check of the sender domain; absent = not checked. */
  lookup?: SenderDomainLookup;
}

/** Why a sender was refused, for metrics and logs. */
export type SenderRefusalReason = "address-literal" | SenderDomainState;

/** Null when the sender is acceptable, else the reply to send (with `code` naming the reason). */
export async function checkSender(address: string, options: SenderCheckOptions): Promise<SmtpError | null> {
  if (options.trusted || address === "") return null;
  const { domain } = splitAt(address);
  if (isAddressLiteral(domain)) {
    return reject(
      550,
      "5.7.1",
      `Sender address rejected: address literals (${
        domain.slice(0, 64)
      }) are not accepted from unauthenticated clients`,
      "SENDER_ADDRESS_LITERAL",
    );
  }
  if (!options.lookup) return null;
  const canonical = canonicalDomain(domain);
  if (!canonical) return reject(501, "5.1.7", "Bad sender address syntax: invalid domain name", "SENDER_SYNTAX");
  let state: SenderDomainState;
  try {
    state = await options.lookup(canonical);
  } catch {
    state = "tempfail";
  }
  switch (state) {
    case "ok":
      return null;
    case "tempfail":
      return reject(
        450,
        "4.1.8",
        `Sender address rejected: cannot look up ${canonical} now, try again later`,
        "SENDER_DOMAIN_TEMPFAIL",
      );
    case "null-mx":
      return reject(
        550,
        "5.1.8",
        `Sender address rejected: ${canonical} accepts no mail (null MX)`,
        "SENDER_DOMAIN_NULL_MX",
      );
    default:
      return reject(
        550,
        "5.1.8",
        `Sender address rejected: Domain not found (${canonical} has no MX or address records)`,
        "SENDER_DOMAIN_UNKNOWN",
      );
  }
}
