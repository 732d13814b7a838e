/**
 * MTA-STS (RFC 8461): discover a domain's policy id (`_mta-sts.<domain>` TXT), fetch the
 * policy from `https://mta-sts.<domain>/.well-known/mta-sts.txt` and parse it with
 * mailauth's parser; MX matching is mailauth's `validateMx`.
 *
 * The fetch keeps to RFC 8461 3.3: HTTPS with certificate validation against the
 * system roots (plus `ca` for private PKI), at most 64 KB, 60 s, no redirects (a 3xx is
 * a failure), only 200. Policy hosts that resolve to loopback, private, link-local or
 * otherwise non-public addresses are refused (no SSRF into the local network) unless
 * `allowPrivate` is set, which exists for tests only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNonPublicAddress, type StsPolicy, stsAllowsMx } from "./mta_sts.ts"; // @ts-ignore deno#26900
 *
 * // What fetchStsPolicy("example.com", { resolver }) returns for a published policy:
 * const policy: StsPolicy = {
 *   domain: "example.com",
 *   id: "20260101T000000",
 *   mode: "enforce",
 *   mx: ["*.mx.example.com"],
 *   maxAge: 86_400,
 *   fetchedAt: 0,
 *   expiresAt: 86_400_000,
 * };
 * assert.equal(stsAllowsMx("a.mx.example.com", policy), true);
 * assert.equal(stsAllowsMx("mx.attacker.example", policy), false); // enforce: never deliver there
 * assert.equal(isNonPublicAddress("10.0.0.1"), true); // policy hosts on private addresses are refused
 * ```
 * @module
 */
import https from "node:https";
import { Buffer } from "node:buffer";
import { parsePolicy, validateMx } from "mailauth/lib/mta-sts.js";
import { matchesAny, parseNetworks } from "../util/cidr.ts";
import type { Resolver } from "./resolver.ts";

/** A fetched policy (what is stored). */
export interface StsPolicy {
  domain: string;
  id: string;
  mode: "enforce" | "testing" | "none";
  mx: string[];
  /** Seconds (RFC 8461: at most 31557600). */
  maxAge: number;
  fetchedAt: number;
  expiresAt: number;
}

/** Why there is no usable policy. */
export class StsError extends Error {
  constructor(
    message: string,
    /** "STS_NONE": the domain publishes no policy; "STS_FETCH": it does but it could not be fetched/parsed. */
    readonly code: "STS_NONE" | "STS_FETCH" | "STS_INVALID",
  ) {
    super(message);
    this.name = "StsError";
  }
}

/** Fetch settings. */
export interface StsFetchOptions {
  resolver: Resolver;
  /** Extra trusted CA certificates (PEM). */
  ca?: string;
  /** HTTPS port of policy hosts (443; other values are for tests). */
  port?: number;
  /** TEST ONLY: allow policy hosts on loopback/private addresses. */
  allowPrivate?: boolean;
  timeoutMs?: number;
  maxBytes?: number;
  now?: () => number;
}

const NON_PUBLIC = parseNetworks([
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "224.0.0.0/3",
  "::/128",
  "::1/128",
  "fc00::/7",
  "fe80::/10",
  "ff00::/8",
]);

/** True for loopback, private, link-local, shared, multicast and reserved addresses. */
export const isNonPublicAddress = (ip: string): boolean => matchesAny(NON_PUBLIC, ip);

/** The policy id from `_mta-sts.<domain>` TXT; throws StsError STS_NONE when there is none. */
export async function stsPolicyId(domain: string, resolver: Resolver): Promise<string> {
  if (!resolver.lookup) throw new StsError(`no TXT lookups with this resolver`, "STS_NONE");
  let texts: string[];
  try {
    const answer = await resolver.lookup(`_mta-sts.${domain}`, "TXT");
    texts = answer.records.map((r) => (r.data as Uint8Array[]).map((b) => new TextDecoder().decode(b)).join(""));
  } catch (err) {
    const e = err as { permanent?: boolean; message: string };
    if (e.permanent) throw new StsError(`${domain} publishes no MTA-STS record`, "STS_NONE");
    throw new StsError(`MTA-STS TXT lookup for ${domain} failed: ${e.message}`, "STS_FETCH");
  }
  const sts = texts.filter((t) => /^v=STSv1[ \t]*;/.test(t));
  if (sts.length !== 1) {
    throw new StsError(`${domain} has ${sts.length} MTA-STS TXT records (exactly one is needed)`, "STS_NONE");
  }
  const id = /(?:^|;)[ \t]*id=([A-Za-z0-9]{1,32})[ \t]*(?:;|$)/.exec(sts[0]!)?.[1];
  if (!id) throw new StsError(`${domain}'s MTA-STS record has no valid id`, "STS_NONE");
  return id;
}

function get(ip: string, host: string, options: StsFetchOptions): Promise<string> {
  const maxBytes = options.maxBytes ?? 65_536;
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: ip,
      port: options.port ?? 443,
      servername: host,
      headers: { host },
      path: "/.well-known/mta-sts.txt",
      method: "GET",
      rejectUnauthorized: true,
      // Deno adds `ca` to its default roots (as smtp_client relies on too); reading tls.rootCertificates
      // would need --allow-sys=ca, which the daemon does not have.
      ca: options.ca ? [options.ca] : undefined,
      agent: false,
    }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        const what = res.statusCode && res.statusCode >= 300 && res.statusCode < 400 ? "a redirect (refused)" : "";
        return reject(new StsError(`https://${host}/ answered ${res.statusCode} ${what}`.trim(), "STS_FETCH"));
      }
      const chunks: Uint8Array[] = [];
      let size = 0;
      res.on("data", (c: Uint8Array) => {
        size += c.length;
        if (size > maxBytes) {
          req.destroy();
          return reject(new StsError(`the policy at https://${host}/ is larger than ${maxBytes} bytes`, "STS_FETCH"));
        }
        chunks.push(c);
      });
      res.on("end", () => resolve(new TextDecoder().decode(Buffer.concat(chunks))));
      res.on("error", (err) => reject(new StsError(err.message, "STS_FETCH")));
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new StsError(`fetching https://${host}/.well-known/mta-sts.txt timed out`, "STS_FETCH"));
    }, options.timeoutMs ?? 60_000);
    req.on("close", () => clearTimeout(timer));
    req.on("error", (err) => reject(new StsError(`https://${host}/: ${err.message}`, "STS_FETCH")));
    req.end();
  });
}

/** Fetches and parses `domain`'s policy (the id as published now, or as given). */
export async function fetchStsPolicy(domain: string, options: StsFetchOptions, knownId?: string): Promise<StsPolicy> {
  const id = knownId ?? await stsPolicyId(domain, options.resolver);
  const host = `mta-sts.${domain}`;
  let ips: string[];
  try {
    ips = await options.resolver.addresses(host);
  } catch (err) {
    throw new StsError(`policy host ${host} has no address: ${(err as Error).message}`, "STS_FETCH");
  }
  const ip = ips.find((a) => options.allowPrivate || !isNonPublicAddress(a));
  if (!ip) throw new StsError(`policy host ${host} resolves only to non-public addresses (refused)`, "STS_FETCH");
  const text = await get(ip, host, options);
  let parsed;
  try {
    parsed = parsePolicy(text);
  } catch (err) {
    throw new StsError(`the policy of ${domain} is invalid: ${(err as Error).message}`, "STS_INVALID");
  }
  const maxAge = Math.min(parsed.maxAge ?? 86_400, 31_557_600);
  const now = (options.now ?? Date.now)();
  return { domain, id, mode: parsed.mode, mx: parsed.mx ?? [], maxAge, fetchedAt: now, expiresAt: now + maxAge * 1000 };
}

/** Whether `mxHost` is allowed by `policy` (RFC 8461 4.1). */
export function stsAllowsMx(mxHost: string, policy: StsPolicy): boolean {
  return validateMx(mxHost, { mode: policy.mode, mx: policy.mx, id: policy.id }).valid;
}
