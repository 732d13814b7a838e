/**
 * The `dkim.*` part of the control API (kept apart from api_args.ts/api_results.ts):
 * `dkim.check` resolves the published DKIM records of a signing domain and compares
 * them with the daemon's configured private keys.
 * @module
 */
import { z } from "zod";

/** Arguments of `dkim.check`. */
export const DKIM_CHECK_ARGS = z.strictObject({
  domain: z.string({ error: "expected a signing domain, e.g. example.com" }).min(1)
    .transform((d) => d.toLowerCase().replace(/\.$/, "")),
  selector: z.string().min(1).optional(),
});

/** One configured key and what DNS holds for it. */
export interface DkimCheckRow {
  selector: string;
  type: "rsa" | "ed25519";
  key_file: string;
  /** The key's validity window right now. */
  active: boolean;
  ok: boolean;
  status: string;
  reason: string;
  /** `<selector>._domainkey.<domain>` */
  name: string;
  published?: string;
  expected?: string;
}

/** Result of `dkim.check`. */
export interface DkimCheckResult {
  domain: string;
  /** True when every checked key is published correctly. */
  ok: boolean;
  keys: DkimCheckRow[];
}
