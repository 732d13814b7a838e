/**
 * Which transport a destination domain uses, from config: the domain's own
 * `transport` (`[delivery.domains."…"]`, wildcards as in routing) first, then
 * `delivery.local_transport` for `relay.local_domains`, else SMTP.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfig } from "../config/load.ts";
 * import { chooseTransport } from "./transport_select.ts"; // @ts-ignore deno#26900
 *
 * const config = parseConfig('[delivery.domains."example.com"]\ntransport = "lmtp"\nlmtp = "unix:/run/dovecot/lmtp"\n', "config.toml");
 * assert.deepEqual(chooseTransport("example.com", config), { kind: "lmtp", target: "unix:/run/dovecot/lmtp" });
 * assert.deepEqual(chooseTransport("example.net", config), { kind: "smtp" });
 * // createTransportSelector({ config: () => config, smtp, lmtp, http }) picks the matching transport object.
 * ```
 * @module
 */
import type { Config } from "../config/mod.ts";
import { matchDomainPolicy } from "./router.ts";
import type { DeliveryTransport, TransportSelector } from "./transport.ts";

/** One `[delivery.domains."…"]` table. */
export type DomainPolicy = Config["delivery"]["domains"][string];

/** The transport chosen for a domain, with what it needs. */
export type TransportChoice =
  | { kind: "smtp" }
  | { kind: "lmtp"; target: string }
  | { kind: "http"; policy: DomainPolicy & { url: string } };

/** The transport for `domain` under `config` (see module docs for the precedence). */
export function chooseTransport(domain: string, config: Config): TransportChoice {
  const d = config.delivery;
  const policy = matchDomainPolicy(domain, new Map(Object.entries(d.domains)));
  if (policy?.transport === "lmtp" && policy.lmtp) return { kind: "lmtp", target: policy.lmtp };
  if (policy?.transport === "http" && policy.url) return { kind: "http", policy: { ...policy, url: policy.url } };
  if (
    policy?.transport === undefined && d.local_transport &&
    config.relay.local_domains.some((l) => l.toLowerCase() === domain)
  ) {
    return { kind: "lmtp", target: d.local_transport };
  }
  return { kind: "smtp" };
}

/** The transports a selector picks from. */
export interface SelectorOptions {
  config: () => Config;
  smtp: DeliveryTransport;
  lmtp: DeliveryTransport;
  http: DeliveryTransport;
}

/** A {@link TransportSelector} over config (re-read on every call, so reloads apply). */
export function createTransportSelector(options: SelectorOptions): TransportSelector {
  return (domain) => options[chooseTransport(domain, options.config()).kind];
}
