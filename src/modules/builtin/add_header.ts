/**
 * Built-in `add_header`: adds header fields to every message, right below
 * Empath's Received field. Values are templates: `{peer}`, `{helo}`, `{sender}`,
 * `{user}`, `{tls}`, `{listener}` are replaced with the session's values (empty
 * when unknown). The fields are added at MAIL FROM, so they cost nothing extra.
 *
 * ```toml
 * [[modules]]
 * builtin = "add_header"
 * options = { headers = { "X-Received-Via" = "{listener} from {peer}", "X-Policy" = "checked" } }
 * ```
 * @module
 */
import { z } from "zod";
import { formatHeader, stripControl } from "../headers.ts";
import type { Context, ModuleFactory } from "../types.ts";
import { parseOptions } from "./options.ts";

const schema = z.strictObject({
  headers: z.record(z.string(), z.string(), {
    error: 'expected a table of header names to values, like { "X-A" = "b" }',
  })
    .refine((h) => Object.keys(h).length > 0, { error: "expected at least one header" })
    .superRefine((h, ctx) => {
      for (const [name, value] of Object.entries(h)) {
        try {
          formatHeader(name, value);
        } catch (err) {
          ctx.addIssue({ code: "custom", path: [name], message: (err as Error).message });
        }
      }
    }),
});

/** Fills `{placeholders}` from the context. */
export function expand(template: string, ctx: Context, sender: string): string {
  const s = ctx.session;
  const values: Record<string, string | undefined> = {
    peer: s?.remote.address,
    helo: s?.helo,
    sender,
    user: s?.user,
    tls: s?.tls ? s.tls.version ?? "yes" : "no",
    listener: s?.listener,
  };
  return template.replace(/\{(\w+)\}/g, (all, key: string) => key in values ? values[key] ?? "" : all);
}

/** The header-adding module. */
const addHeader: ModuleFactory = ({ options }) => {
  const o = parseOptions(schema, options);
  return {
    mailFrom(ctx, { address }) {
      for (const [name, template] of Object.entries(o.headers)) {
        ctx.addHeader(name, stripControl(expand(template, ctx, address)));
      }
    },
  };
};
export default addHeader;
