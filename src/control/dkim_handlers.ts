/**
 * Handler of `dkim.check`: for every configured key of a domain (or one selector), read
 * the key file, resolve `<selector>._domainkey.<domain>` (uncached, through the configured
 * name server, so a record just published is seen) and compare.
 * @module
 */
import { checkPublished, loadKeySet } from "../auth/mod.ts";
import type { GroupHandlers } from "./context.ts";
import type { DkimCheckRow } from "./api_dkim.ts";
import { ControlError } from "./protocol.ts";

/** `dkim.*`. */
export const dkimHandlers: GroupHandlers<"dkim"> = {
  "dkim.check": async ({ domain, selector }, ctx) => {
    const config = ctx.config();
    const keys = config.dkim.keys.filter((k) =>
      k.domain.toLowerCase().replace(/\.$/, "") === domain && (!selector || k.selector === selector)
    );
    if (keys.length === 0) {
      throw new ControlError(
        `no [[dkim.keys]] for ${domain}${selector ? ` with selector ${selector}` : ""} in the running config`,
        "NOT_FOUND",
      );
    }
    const ns = config.delivery.dns.nameserver;
    const lookup = (name: string) =>
      Deno.resolveDns(name, "TXT", {
        nameServer: ns ? { ipAddr: ns.host, port: ns.port } : undefined,
        signal: AbortSignal.timeout(config.delivery.dns.timeout),
      });
    const now = Date.now();
    const rows: DkimCheckRow[] = [];
    for (const k of keys) {
      const base = {
        selector: k.selector,
        type: k.type,
        key_file: k.key_file,
        active: (!k.not_before || k.not_before.getTime() <= now) && (!k.not_after || now < k.not_after.getTime()),
        name: `${k.selector}._domainkey.${domain}`,
      };
      let pem: string;
      try {
        pem = loadKeySet([k]).keys[0]!.privateKeyPem;
      } catch (err) {
        rows.push({ ...base, ok: false, status: "key-error", reason: (err as Error).message });
        continue;
      }
      const check = await checkPublished(domain, k.selector, pem, lookup);
      rows.push({
        ...base,
        ok: check.ok,
        status: check.status,
        reason: check.reason,
        published: check.published,
        expected: check.expected,
      });
    }
    return { domain, ok: rows.every((r) => r.ok), keys: rows };
  },
};
