/**
 * Builds the SMTP side's recipient validation (`[recipients]`) and sender-domain look-up
 * from the running config and the delivery resolver. The recipient check is rebuilt only
 * when the `[recipients]` section or the local domains change (a reload that touches
 * neither keeps the table's state and the probe cache).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createResolver } from "../delivery/mod.ts";
 * import { senderDomainLookup } from "./recipients.ts"; // @ts-ignore deno#26900
 *
 * const resolver = createResolver({ timeoutMs: 1000 });
 * const lookup = senderDomainLookup(resolver); // for checkSender(address, { trusted, lookup })
 * assert.equal(typeof lookup, "function"); // lookup("example.com") → "ok" | "nxdomain" | "no-mail" | …
 * resolver.close();
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import { DnsError, type Resolver } from "../delivery/mod.ts";
import type { Metrics } from "../observability/metrics.ts";
import {
  createRecipientCheck,
  createRecipientProbe,
  openRecipientTable,
  parseProbeTarget,
  type RecipientCheck,
  type SenderDomainLookup,
  type SenderDomainState,
} from "../smtp/mod.ts";

/** A recipient check that follows config reloads. */
export function recipientChecks(
  config: () => Config,
  hostname: string,
  log: Logger,
  metrics?: Metrics,
): () => RecipientCheck {
  let key = "";
  let check: RecipientCheck | undefined;
  return () => {
    const c = config();
    const next = JSON.stringify([c.recipients, c.relay.local_domains]);
    if (check && next === key) return check;
    key = next;
    const r = c.recipients;
    const table = r.table
      ? openRecipientTable({
        path: r.table,
        onReload: (t) => log.info("recipients table {path} reloaded: {n} entries", { path: r.table, n: t.size }),
        onError: (e) =>
          log.error("recipients table {path} not reloaded, keeping the last good one: {error}", {
            path: r.table,
            error: e.message,
          }),
      })
      : undefined;
    const probe = r.verify
      ? createRecipientProbe({
        target: parseProbeTarget(r.verify),
        helo: hostname,
        positiveTtlMs: r.verify_positive_ttl,
        negativeTtlMs: r.verify_negative_ttl,
        timeoutMs: r.verify_timeout,
      })
      : undefined;
    check = createRecipientCheck({
      unknown: r.unknown,
      delimiter: r.delimiter,
      table,
      probe,
      onDecision: (d) => {
        const result = d.known === true ? "known" : d.known === false ? "unknown" : "tempfail";
        metrics?.recipientChecks.inc({ result, source: d.source });
      },
    });
    return check;
  };
}

/** Loads the recipients table once at start, so a broken file stops the start with its error. */
export async function checkRecipientsTable(config: Config): Promise<void> {
  if (config.recipients.table) await openRecipientTable({ path: config.recipients.table }).load();
}

/** Whether a sender domain can receive mail: MX (null MX refused), else A/AAAA (RFC 5321 5.1). */
export function senderDomainLookup(resolver: Resolver): SenderDomainLookup {
  return async (domain): Promise<SenderDomainState> => {
    try {
      const mx = await resolver.mx(domain);
      if (mx.length === 1 && (mx[0]?.exchange === "" || mx[0]?.exchange === ".")) return "null-mx";
      if (mx.length > 0) return "ok";
    } catch (err) {
      if (!(err instanceof DnsError)) return "tempfail";
      if (err.code === "NULL_MX") return "null-mx";
      if (err.code === "NXDOMAIN") return "nxdomain";
      if (err.code === "TEMPFAIL") return "tempfail";
    }
    try {
      await resolver.addresses(domain);
      return "ok";
    } catch (err) {
      return err instanceof DnsError && err.permanent ? "no-mail" : "tempfail";
    }
  };
}
