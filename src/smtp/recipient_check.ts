/**
 * Recipient validation at RCPT for local domains (`[recipients]`): unknown users get
 * `550 5.1.1` in the SMTP session, so no bounce is ever needed for them. A recipient is
 * known, in this order, when:
 *
 * 1. a module's `rcptTo` hook accepted it explicitly (`{ action: "accept" }`);
 * 2. it is `postmaster@` or `abuse@` a local domain (RFC 5321 4.5.1, RFC 2142);
 * 3. it is in the recipients table (exact address, `@domain` catch-all, `+`-extension);
 * 4. the final hop accepts it in an RCPT probe (cached; a temporary answer gives `450 4.1.1`).
 *
 * Otherwise `unknown = "reject"` (the default) refuses it, `unknown = "accept"` lets it in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRecipientCheck } from "./recipient_check.ts"; // @ts-ignore deno#26900
 *
 * const check = createRecipientCheck({ unknown: "reject", delimiter: "+" });
 * const refusal = await check.check("nobody@example.com", false);
 * assert.match(refusal?.message ?? "", /Recipient address rejected/); // 550 5.1.1
 * assert.equal(await check.check("postmaster@example.com", false), null);
 * ```
 * @module
 */
import { splitAt } from "../util/address.ts";
import { reject, type SmtpError } from "./errors.ts";
import type { RecipientProbe } from "./recipient_probe.ts";
import type { RecipientTableFile } from "./recipient_table.ts";

/** Where a decision came from, for logs and metrics. */
export type RecipientSource = "module" | "builtin" | "table" | "probe" | "policy";

/** One decision. */
export interface RecipientDecision {
  address: string;
  known: boolean | "tempfail";
  source: RecipientSource;
}

/** Options for {@link createRecipientCheck}. */
export interface RecipientCheckOptions {
  unknown: "reject" | "accept";
  delimiter: string;
  table?: RecipientTableFile;
  probe?: RecipientProbe;
  onDecision?: (decision: RecipientDecision) => void;
}

/** The check. */
export interface RecipientCheck {
  /** `address` is canonical and at a local domain; null when accepted, else the reply. */
  check(address: string, moduleAccepted: boolean): Promise<SmtpError | null>;
}

const ALWAYS_KNOWN = new Set(["postmaster", "abuse"]);

/** Creates the check from its sources. */
export function createRecipientCheck(options: RecipientCheckOptions): RecipientCheck {
  const decide = (address: string, known: RecipientDecision["known"], source: RecipientSource) => {
    options.onDecision?.({ address, known, source });
  };
  return {
    async check(address, moduleAccepted) {
      if (moduleAccepted) return decide(address, true, "module"), null;
      if (ALWAYS_KNOWN.has(splitAt(address).local.toLowerCase())) return decide(address, true, "builtin"), null;
      if (options.table && await options.table.has(address, options.delimiter)) {
        return decide(address, true, "table"), null;
      }
      if (options.probe) {
        const result = await options.probe.check(address);
        if (result.verdict === "known") return decide(address, true, "probe"), null;
        if (result.verdict === "tempfail") {
          decide(address, "tempfail", "probe");
          return reject(
            450,
            "4.1.1",
            `<${address}>: Recipient address rejected: unverified address: ${oneLine(result.reply)}`,
            "RCPT_UNVERIFIED",
          );
        }
        decide(address, false, "probe");
        return reject(
          550,
          "5.1.1",
          `<${address}>: Recipient address rejected: undeliverable address: ${oneLine(result.reply)}`,
          "RCPT_UNKNOWN",
        );
      }
      if (options.unknown === "accept") return decide(address, true, "policy"), null;
      decide(address, false, options.table ? "table" : "policy");
      return reject(
        550,
        "5.1.1",
        `<${address}>: Recipient address rejected: User unknown in local recipient table`,
        "RCPT_UNKNOWN",
      );
    },
  };
}

function oneLine(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, " ").slice(0, 200);
}
