/**
 * Mail loops back to myself: a next hop that is one of this Empath's own listeners.
 * Postfix's rule: when an MX host is this machine, every MX host with the same or a
 * worse preference is dropped; when nothing better is left, the mail bounces with
 * `5.4.6 mail for <domain> loops back to myself` before any connection is made
 * (instead of looping until the hop count is exceeded).
 *
 * A listener on a wildcard address ("0.0.0.0", "::") is reached through loopback and
 * every local interface address, on its port.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isOwnListener } from "./loop_check.ts"; // @ts-ignore deno#26900
 *
 * assert.equal(isOwnListener({ ip: "127.0.0.1", port: 2525 }, [{ host: "0.0.0.0", port: 2525 }]), true);
 * assert.equal(isOwnListener({ ip: "192.0.2.25", port: 25 }, [{ host: "127.0.0.1", port: 25 }]), false);
 * ```
 * @module
 */

/** A bound listener address. */
export interface ListenerAddress {
  host: string;
  port: number;
}

const WILDCARD = new Set(["0.0.0.0", "::", "", "[::]"]);

const normalize = (ip: string) =>
  ip.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, "$1").replace(/^\[|\]$/g, "").toLowerCase();

const isLoopback = (ip: string) => ip === "::1" || ip.startsWith("127.") || ip === "localhost";

/** This host's interface addresses (empty without --allow-sys=networkInterfaces). */
function interfaceAddresses(): Set<string> {
  try {
    return new Set(Deno.networkInterfaces().map((i) => normalize(i.address)));
  } catch {
    return new Set();
  }
}

/** True when connecting to `ip:port` would reach one of `listeners`. */
export function isOwnListener(
  target: { ip: string; port: number },
  listeners: ListenerAddress[],
  local: () => Set<string> = interfaceAddresses,
): boolean {
  const ip = normalize(target.ip);
  let locals: Set<string> | undefined;
  for (const l of listeners) {
    if (l.port !== target.port) continue;
    const host = normalize(l.host);
    if (host === ip) return true;
    if (WILDCARD.has(host) && (isLoopback(ip) || (locals ??= local()).has(ip))) return true;
  }
  return false;
}

/** The reply for a domain whose best next hop is this host. */
export function loopReply(domain: string): string {
  return `554 5.4.6 mail for ${domain} loops back to myself`;
}

/**
 * Drops candidates at or after (by preference) the first one that is this host.
 * Returns undefined when that leaves none: the mail loops.
 */
export function trimSelf<T extends { ip: string; port: number; preference: number }>(
  candidates: T[],
  listeners: ListenerAddress[],
): T[] | undefined {
  const self = candidates.find((c) => isOwnListener(c, listeners));
  if (!self) return candidates;
  const kept = candidates.filter((c) => c.preference < self.preference);
  return kept.length > 0 ? kept : undefined;
}
