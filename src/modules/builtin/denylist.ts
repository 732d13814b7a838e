/**
 * Built-in `denylist`: listed senders and/or recipients are refused. Patterns: see patterns.ts.
 *
 * ```toml
 * [[modules]]
 * builtin = "denylist"
 * options = { senders = ["@spammer.example"], recipients = ["ex-employee@example.com"] }
 * ```
 * Replies: `550 5.7.1 Sender <x> is blocked` / `550 5.7.1 Recipient <x> is blocked` (`message` replaces the text).
 * @module
 */
import { z } from "zod";
import { accept, reject } from "../verdict.ts";
import type { ModuleFactory } from "../types.ts";
import { patternList } from "./allowlist.ts";
import { parseOptions } from "./options.ts";
import { compilePatterns } from "./patterns.ts";

const schema = z.strictObject({
  senders: patternList,
  recipients: patternList,
  message: z.string().min(1).optional(),
});

/** The denylist module. */
const denylist: ModuleFactory = ({ options }) => {
  const o = parseOptions(schema, options);
  const sender = compilePatterns(o.senders);
  const recipient = compilePatterns(o.recipients);
  return {
    mailFrom(_ctx, { address }) {
      return sender(address) ? reject(o.message ?? `Sender <${address}> is blocked`, 550, "5.7.1") : accept();
    },
    rcptTo(_ctx, { address }) {
      return recipient(address) ? reject(o.message ?? `Recipient <${address}> is blocked`, 550, "5.7.1") : accept();
    },
  };
};
export default denylist;
