/**
 * The `[recipients]` section: which recipients at `relay.local_domains` exist. Unknown ones are
 * refused at RCPT with `550 5.1.1`, so Empath never has to bounce mail for a user that does not
 * exist (that bounce would go to a possibly forged sender: backscatter).
 *
 * A recipient is known when a module's `rcptTo` hook accepts it explicitly, or it is
 * `postmaster@` / `abuse@` a local domain (RFC 5321 4.5.1, RFC 2142), or it is in `table`, or the
 * final hop (`verify`) accepts it in a probe. With none of these configured, only postmaster and
 * abuse exist — the safe default, as in Postfix, which refuses unknown local users.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recipientsConfig } from "./recipients.ts"; // @ts-ignore deno#26900
 *
 * const r = recipientsConfig.parse({ table: "/etc/empath/recipients" });
 * assert.deepEqual([r.unknown, r.delimiter], ["reject", "+"]); // the defaults
 * ```
 * @module
 */
import { z } from "zod";
import { duration } from "./types.ts";

const target = z.string().regex(/^(lmtp|smtp):(unix:.+|\[?[^\]\s]+\]?:\d{1,5})$/, {
  error: 'expected "lmtp:unix:/path", "lmtp:host:port" or "smtp:host:port"',
});

/** `[recipients]`. */
export const recipientsConfig = z.strictObject({
  /** What happens to a recipient at a local domain that nothing knows: "reject" (550 5.1.1) or "accept". */
  unknown: z.enum(["reject", "accept"], { error: 'expected "reject" (550 5.1.1) or "accept"' }).default("reject"),
  /** A file of known addresses (`user@domain`, `@domain` catch-alls), re-read when it changes. */
  table: z.string().min(1).optional(),
  /** Characters that start an address extension: `user+tag@domain` is looked up as `user@domain` too. */
  delimiter: z.string().max(8).default("+"),
  /** Probe the final hop with RCPT (Postfix reject_unverified_recipient). */
  verify: target.optional(),
  /** How long an accepted probe is remembered. */
  verify_positive_ttl: duration.default(86_400_000),
  /** How long a refused probe is remembered. */
  verify_negative_ttl: duration.default(600_000),
  /** A probe that takes longer is a temporary failure (450 4.1.1). */
  verify_timeout: duration.default(10_000),
});

/** The parsed `[recipients]` section. */
export type RecipientsConfig = z.output<typeof recipientsConfig>;
