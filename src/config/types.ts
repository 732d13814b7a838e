/**
 * Reusable zod field types for the config: durations, sizes, addresses, networks.
 * Each carries an "expected …" message so errors name what would have been valid.
 * @module
 */
import { z } from "zod";
import { parseDuration, parseSize } from "./units.ts";
import { parseNetwork } from "../util/cidr.ts";

/** A duration string ("30s", "5m") parsed to milliseconds. */
export const duration = z.string({ error: 'expected a duration string like "30s", "5m" or "4h"' })
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: 'expected a duration like "30s", "5m" or "4h"' });
      return z.NEVER;
    }
    return ms;
  });

/** A size string ("25MB", "512KiB") or a plain integer of bytes. */
export const size = z.union([z.string(), z.number().int().nonnegative()], {
  error: 'expected a size like "25MB", "512KiB" or a number of bytes',
}).transform((value, ctx) => {
  const bytes = typeof value === "number" ? value : parseSize(value);
  if (bytes === undefined) {
    ctx.addIssue({ code: "custom", message: 'expected a size like "25MB", "512KiB" or a number of bytes' });
    return z.NEVER;
  }
  return bytes;
});

/** "host:port" or "[v6]:port". */
export const hostPort = z.string().transform((text, ctx) => {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    ctx.addIssue({ code: "custom", message: 'expected "host:port", e.g. "127.0.0.1:2525" or "[::1]:25"' });
    return z.NEVER;
  }
  // The regex matched, so one of the two host alternatives did.
  return { host: (m[1] ?? m[2])!, port };
});

/** A CIDR network ("10.0.0.0/8", "::1/128") or a single address. */
export const network = z.string().refine((t) => parseNetwork(t) !== undefined, {
  message: 'expected a CIDR network like "10.0.0.0/8" or "::1/128"',
});

/** A positive integer count. */
export const count = z.number({ error: "expected a positive whole number" }).int().positive();

/** A domain name, lower-cased. Accepts "*.example.com" wildcards where noted by the caller. */
export const domain = z.string().regex(
  /^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*\.?$/i,
  'expected a domain name like "example.com" (or "*.example.com")',
).transform((d) => d.toLowerCase().replace(/\.$/, ""));
