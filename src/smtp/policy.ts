/**
 * Relay policy: a recipient is accepted when its domain is local, or the client
 * authenticated, or the client address is in `relay_networks`. Everything else
 * gets `554 5.7.1`. Source routes, percent hacks and bang paths from clients
 * that may not relay are refused outright (they are relay tricks).
 *
 * @example
 * ```ts
 * const policy = createRelayPolicy({ local_domains: ["example.com"], relay_networks: ["127.0.0.0/8"] });
 * policy.checkRecipient("a@example.com", { address: "192.0.2.1", authenticated: false }); // null = ok
 * ```
 * @module
 */
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
  /** null when accepted, otherwise the rejection to send. */
  checkRecipient(address: string, client: ClientFacts): SmtpError | null;
}

/** Splits "local@domain" at the last "@"; domain lower-cased. */
export function splitAddress(address: string): { local: string; domain: string } {
  const at = address.lastIndexOf("@");
  if (at < 0) return { local: address, domain: "" };
  return { local: address.slice(0, at), domain: address.slice(at + 1).toLowerCase().replace(/\.$/, "") };
}

/** Builds the policy from the [relay] config section. */
export function createRelayPolicy(relay: { local_domains: string[]; relay_networks: string[] }): RelayPolicy {
  const local = new Set(relay.local_domains.map((d) => d.toLowerCase()));
  const networks: Network[] = parseNetworks(relay.relay_networks);
  const isLocalDomain = (domain: string) => local.has(domain.toLowerCase());
  const mayRelay = (client: ClientFacts) => client.authenticated || matchesAny(networks, client.address);
  return {
    isLocalDomain,
    mayRelay,
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
