/**
 * Built-in `allowlist`: only listed senders and/or recipients get through. A list
 * that is empty or absent allows everything. Patterns: see patterns.ts.
 *
 * ```toml
 * [[modules]]
 * builtin = "allowlist"
 * options = { senders = ["@example.com", "<>"], recipients = ["postmaster@", "@example.com"] }
 * ```
 * Replies: `550 5.7.1 Sender <x> is not allowed here` / `550 5.7.1 Recipient <x> is not allowed here`
 * (`message` replaces the text).
 * @module
 */
import { z } from "zod";
import { accept, reject } from "../verdict.ts";
import type { ModuleFactory } from "../types.ts";
import { parseOptions } from "./options.ts";
import { compilePatterns, isPattern } from "./patterns.ts";

/** Address pattern list (zod). */
export const patternList = z.array(
  z.string().refine(isPattern, { error: 'expected "user@domain", "@domain", "@*.domain", "user@" or "<>"' }),
  { error: "expected a list of address patterns" },
).default([]);

const schema = z.strictObject({
  senders: patternList,
  recipients: patternList,
  message: z.string().min(1).optional(),
});

/** The allowlist module. */
const allowlist: ModuleFactory = ({ options }) => {
  const o = parseOptions(schema, options);
  const sender = o.senders.length ? compilePatterns(o.senders) : undefined;
  const recipient = o.recipients.length ? compilePatterns(o.recipients) : undefined;
  return {
    mailFrom(_ctx, { address }) {
      const ok = !sender || sender(address);
      return ok ? accept() : reject(o.message ?? `Sender <${address}> is not allowed here`, 550, "5.7.1");
    },
    rcptTo(_ctx, { address }) {
      const ok = !recipient || recipient(address);
      return ok ? accept() : reject(o.message ?? `Recipient <${address}> is not allowed here`, 550, "5.7.1");
    },
  };
};
export default allowlist;
