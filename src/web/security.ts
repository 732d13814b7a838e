/**
 * The console's guards: strict response headers (CSP without inline code,
 * frame-ancestors 'none'), the Host check against DNS rebinding, same-origin
 * checks for state-changing requests, and constant-time secret comparison.
 * @module
 */
import { timingSafeEqual } from "node:crypto";

/** Headers on every console response. */
export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** True when an address is loopback (127/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * True when the request's Host names this server: a loopback name on the listening port, or
 * one of `allowed` ("name" or "name:port"). Anything else may be a DNS-rebinding page.
 */
export function hostAllowed(hostHeader: string | null, port: number, allowed: readonly string[]): boolean {
  if (!hostHeader) return false;
  const host = hostHeader.toLowerCase();
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  if (!m) return false;
  const name = m[1] ?? "";
  const p = Number(m[2] ?? 80);
  if (allowed.some((a) => a.toLowerCase() === host || a.toLowerCase() === name)) return true;
  return p === port && (LOOPBACK_NAMES.has(name) || isLoopback(name));
}

/** True when a POST comes from this origin (Origin, else Referer; browsers send one of them). */
export function sameOrigin(req: Request): boolean {
  const host = req.headers.get("host");
  const source = req.headers.get("origin") ?? req.headers.get("referer");
  if (!source || !host) return false;
  try {
    return new URL(source).host === host;
  } catch {
    return false;
  }
}

const enc = new TextEncoder();
const digest = async (s: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(s)));

/** Compares two secrets in constant time. */
export async function secretsMatch(given: string, expected: string): Promise<boolean> {
  return timingSafeEqual(await digest(given), await digest(expected));
}

/** A random token (URL-safe base64, 32 bytes). */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Adds the security headers to a response. */
export function secured(res: Response): Response {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.headers.set(k, v);
  return res;
}
