/**
 * IPv4/IPv6 CIDR matching for relay networks and PROXY protocol trust lists.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matchesAny, parseNetworks } from "./cidr.ts"; // @ts-ignore deno#26900
 *
 * const nets = parseNetworks(["127.0.0.0/8", "::1/128"]);
 * assert.equal(matchesAny(nets, "127.0.0.1"), true);
 * assert.equal(matchesAny(nets, "192.0.2.1"), false);
 * ```
 * @module
 */

/** A parsed network: address bytes and prefix length. */
export interface Network {
  bytes: Uint8Array;
  prefix: number;
}

/** Parses an IPv4 or IPv6 address (IPv4-mapped IPv6 is folded to IPv4). */
export function parseIp(text: string): Uint8Array | undefined {
  let addr = text.trim();
  if (addr.startsWith("[") && addr.endsWith("]")) addr = addr.slice(1, -1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  if (mapped) addr = mapped[1]!; // the regex always captures group 1
  if (/^\d+\.\d+\.\d+\.\d+$/.test(addr)) {
    const parts = addr.split(".").map(Number);
    return parts.every((p) => p >= 0 && p <= 255) ? Uint8Array.from(parts) : undefined;
  }
  if (!addr.includes(":")) return undefined;
  const [head, tail, extra] = addr.split("::");
  if (extra !== undefined) return undefined;
  const toGroups = (s: string | undefined): number[] | undefined => {
    if (!s) return [];
    const groups: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
      groups.push(parseInt(g, 16));
    }
    return groups;
  };
  const h = toGroups(head);
  const t = tail === undefined ? [] : toGroups(tail);
  if (!h || !t) return undefined;
  const missing = 8 - h.length - t.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const groups = [...h, ...new Array(missing).fill(0), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** Parses "10.0.0.0/8" or "::1" (a bare address is a host network). */
export function parseNetwork(text: string): Network | undefined {
  const parts = text.split("/");
  const [addr, prefixText] = parts;
  if (addr === undefined || parts.length > 2) return undefined; // "10.0.0.0/8/9" is no network
  const bytes = parseIp(addr);
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  // Digits only: Number("") and Number(" 8") would read "10.0.0.0/" as /0 — every address.
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { bytes, prefix };
}

/** Parses a list of networks, throwing on the first invalid entry. */
export function parseNetworks(list: readonly string[]): Network[] {
  return list.map((text) => {
    const net = parseNetwork(text);
    if (!net) throw new Error(`invalid network "${text}"`);
    return net;
  });
}

/** True when the address lies in the network. */
export function inNetwork(net: Network, address: string): boolean {
  const bytes = parseIp(address);
  if (!bytes || bytes.length !== net.bytes.length) return false;
  let bits = net.prefix;
  // i < prefix / 8 <= bytes.length (parseNetwork caps prefix at the address width; lengths are equal).
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i]! & mask) !== (net.bytes[i]! & mask)) return false;
  }
  return true;
}

/** True when the address lies in any of the networks. */
export function matchesAny(nets: readonly Network[], address: string): boolean {
  return nets.some((n) => inNetwork(n, address));
}
