/**
 * Relay policy: a recipient is accepted when its domain is local, or the client
 * authenticated, or the client address is in `relay_networks`. Everything else
 * gets `554 5.7.1`. Decisions for the classic relay tricks (README "Relay policy",
 * tests/e2e/open_relay_test.ts):
 *
 * - source routes (`<@relay:user@domain>`) are stripped by the SMTP parser before
 *   the policy sees the address (RFC 5321 4.1.1.3 and appendix C: accept, ignore the
 *   route); the remaining address is judged like any other;
 * - `%` (percent hack), `!` (bang path) and `@` inside the local part are sender-specified
 *   routing: refused with 554 5.7.1 from clients that may not relay, even towards a local
 *   domain (Postfix `allow_untrusted_routing = no`); nothing is ever rewritten (no
 *   `allow_percent_hack`, no `swap_bangpath`), so clients that may relay get the address verbatim;
 * - IP literals (`user@[192.0.2.1]`) are never local domains;
 * - domains compare case-insensitively and by their ASCII (A-label) form, so
 *   `bücher.example` and `xn--bcher-kva.example` are the same domain;
 * - `postmaster` without a domain (RFC 5321 4.5.1: MUST be accepted) is the postmaster
 *   of the first local domain.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRelayPolicy } from "./policy.ts"; // @ts-ignore deno#26900
 *
 * const policy = createRelayPolicy({ local_domains: ["example.com"], relay_networks: ["127.0.0.0/8"] });
 * const outsider = { address: "192.0.2.1", authenticated: false };
 * assert.equal(policy.checkRecipient("a@example.com", outsider), null); // local: accepted
 * assert.notEqual(policy.checkRecipient("a@example.net", outsider), null); // relaying denied
 * assert.equal(policy.checkRecipient("a@example.net", { address: "127.0.0.1", authenticated: false }), null);
 * ```
 * @module
 */
import { domainToASCII } from "node:url";
import { matchesAny, type Network, parseNetworks } from "../util/cidr.ts";
import { reject, type SmtpError } from "./errors.ts";

/** Who is asking. */
export interface ClientFacts {
  address: string;
  authenticated: boolean;
}

/** The compiled policy. */
export interface RelayPolicy {
  isLocalDomain(domain: string): boolean;
  mayRelay(client: ClientFacts): boolean;
  /** The address to store: a domainless `postmaster` becomes `postmaster@<first local domain>`. */
  resolveRecipient(address: string): string;
  /** null when accepted, otherwise the rejection to send. */
  checkRecipient(address: string, client: ClientFacts): SmtpError | null;
}

/** Splits "local@domain" at the last "@"; domain lower-cased. */
export function splitAddress(address: string): { local: string; domain: string } {
  const at = address.lastIndexOf("@");
  if (at < 0) return { local: address, domain: "" };
  return { local: address.slice(0, at), domain: address.slice(at + 1).toLowerCase().replace(/\.$/, "") };
}

/** A domain in the form local domains are compared in: lower case, A-labels, no trailing dot. */
export function comparableDomain(domain: string): string {
  const d = domain.toLowerCase().replace(/\.$/, "");
  if (d.startsWith("[") || /^[\x21-\x7e]*$/.test(d)) return d;
  return domainToASCII(d) || d;
}

/** Builds the policy from the [relay] config section. */
export function createRelayPolicy(relay: { local_domains: string[]; relay_networks: string[] }): RelayPolicy {
  const local = new Set(relay.local_domains.map(comparableDomain));
  const networks: Network[] = parseNetworks(relay.relay_networks);
  const isLocalDomain = (domain: string) => local.has(comparableDomain(domain));
  const mayRelay = (client: ClientFacts) => client.authenticated || matchesAny(networks, client.address);
  const postmasterDomain = relay.local_domains[0];
  return {
    isLocalDomain,
    mayRelay,
    resolveRecipient(address) {
      return postmasterDomain && address.toLowerCase() === "postmaster" ? `postmaster@${postmasterDomain}` : address;
    },
    checkRecipient(address, client) {
      const { local: localPart, domain } = splitAddress(address);
      if (!domain || !localPart) {
        return reject(501, "5.1.3", "Bad recipient address syntax: need local-part@domain");
      }
      if (mayRelay(client)) return null;
      if (address.startsWith("@") || /[%!]/.test(localPart) || localPart.includes("@")) {
        return reject(554, "5.7.1", "Source routes, % and ! in addresses are not accepted (relaying denied)");
      }
      if (isLocalDomain(domain)) return null;
      return reject(554, "5.7.1", `Relaying denied: ${domain} is not a local domain and you are not authorized`);
    },
  };
}
