/**
 * `[dkim]` (outbound signing) and `[auth]` (inbound SPF/DKIM/DMARC/ARC checks) config
 * sections, kept apart from schema.ts until the wiring step plugs them in as
 * `dkim: dkimConfig.default({})` and `auth: authConfig.default({})`.
 * @module
 */
import { z } from "zod";
import { count, domain, duration } from "./types.ts";

/** A TOML datetime or an ISO-8601 string, as a Date. */
const instant = z.union([z.date(), z.string()], { error: "expected a date like 2026-01-01T00:00:00Z" })
  .transform((value, ctx) => {
    const date = value instanceof Date ? new Date(value.getTime()) : new Date(value);
    if (Number.isNaN(date.getTime())) {
      ctx.addIssue({ code: "custom", message: "expected a date like 2026-01-01T00:00:00Z" });
      return z.NEVER;
    }
    return date;
  });

/** One `[[dkim.keys]]` entry. */
export const dkimKeyConfig = z.strictObject({
  /** Signing domain (d=). */
  domain,
  /** DNS selector (s=); the record lives at `<selector>._domainkey.<domain>`. */
  selector: z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9_-]*)(?:\.[A-Za-z0-9_-]+)*$/, {
    error: "expected a selector made of letters, digits, '-', '_' and dots",
  }),
  type: z.enum(["rsa", "ed25519"], { error: 'expected "rsa" or "ed25519"' }).default("rsa"),
  /** PEM file with the private key (PKCS#8, or PKCS#1 for RSA). */
  key_file: z.string().min(1),
  /** The key signs from this instant on (default: always). */
  not_before: instant.optional(),
  /** The key stops signing at this instant (default: never). */
  not_after: instant.optional(),
}).refine((k) => !k.not_before || !k.not_after || k.not_before < k.not_after, {
  message: "not_before must be earlier than not_after",
});

/** Default header list: RFC 6376 5.4.1 recommendations. */
export const DEFAULT_SIGNED_HEADERS = [
  "From",
  "Reply-To",
  "Subject",
  "Date",
  "To",
  "Cc",
  "Message-ID",
  "In-Reply-To",
  "References",
  "MIME-Version",
  "Content-Type",
  "Content-Transfer-Encoding",
  "List-Id",
  "List-Unsubscribe",
  "List-Unsubscribe-Post",
];

/** Headers signed one extra time so that adding another instance breaks the signature. */
export const DEFAULT_OVERSIGNED = ["From", "To", "Subject", "Date", "Message-ID"];

/** `[dkim]`: outbound signing. */
export const dkimConfig = z.strictObject({
  enabled: z.boolean().default(false),
  canonicalization: z.enum(["relaxed/relaxed", "relaxed/simple", "simple/relaxed", "simple/simple"])
    .default("relaxed/relaxed"),
  headers: z.array(z.string().min(1)).default(DEFAULT_SIGNED_HEADERS)
    .refine((h) => h.some((n) => n.toLowerCase() === "from"), { message: "the header list must contain From" }),
  oversign: z.array(z.string().min(1)).default(DEFAULT_OVERSIGNED),
  /** When the From: domain has no active key: sign with the envelope sender's domain ("envelope") or not at all. */
  fallback: z.enum(["envelope", "none"]).default("envelope"),
  /** Signing Workers; 0 signs inline (tests only). */
  workers: z.number().int().min(0).max(64).default(2),
  /** Warn this long before a key's not_after. */
  expiry_warning: duration.default(14 * 86_400_000),
  keys: z.array(dkimKeyConfig).default([]),
});

/** `[auth.arc]`: ARC sealing of forwarded mail (RFC 8617); off by default. */
export const arcSealConfig = z.strictObject({
  enabled: z.boolean().default(false),
  domain: domain.optional(),
  selector: z.string().min(1).optional(),
  key_file: z.string().min(1).optional(),
}).refine((a) => !a.enabled || (a.domain && a.selector && a.key_file), {
  message: "[auth.arc] enabled needs domain, selector and key_file",
});

/** `[auth]`: inbound checks on `mx` listeners. */
export const authConfig = z.strictObject({
  enabled: z.boolean().default(false),
  /** The authserv-id in Authentication-Results (default: the server hostname). */
  authserv_id: z.string().min(1).optional(),
  /** What a DMARC failure under p=reject does. */
  dmarc_reject: z.enum(["reject", "quarantine", "record"]).default("reject"),
  /** What a DMARC failure under p=quarantine does. */
  dmarc_quarantine: z.enum(["quarantine", "record"]).default("quarantine"),
  /** What an SPF fail (-all) does. */
  spf_fail: z.enum(["reject", "record"]).default("record"),
  /** A DNS temporary failure that decides a reject policy gives 451 (else: recorded). */
  tempfail_on_dns_error: z.boolean().default(true),
  dns_timeout: duration.default(5_000),
  max_resolve_count: count.default(10),
  arc: arcSealConfig.default({ enabled: false }),
});

/** Parsed `[dkim]`. */
export type DkimConfig = z.output<typeof dkimConfig>;
/** Parsed `[[dkim.keys]]` entry. */
export type DkimKeyConfig = z.output<typeof dkimKeyConfig>;
/** Parsed `[auth]`. */
export type AuthConfig = z.output<typeof authConfig>;
