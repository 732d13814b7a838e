/**
 * Builds the transport security services from the config: the DNSSEC probe (DANE is in
 * effect only with a validating resolver), the MTA-STS cache (persisted in the queue store's
 * state, `mta-sts/<domain>`) and the TLS-RPT counters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { parseConfig } from "../config/load.ts";
 * import { openKvStore } from "../queue/mod.ts";
 * import { createResolver } from "./resolver.ts";
 * import { setupTransportSecurity } from "./security_setup.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const config = parseConfig(`data_dir = "${dir}"`, "config.toml");
 * const store = await openKvStore(`${dir}/queue.kv`);
 * const resolver = createResolver();
 * const sec = await setupTransportSecurity({ config, resolver, store, log: getLogger(["empath"]) });
 * // createDeliveryEngine({ …, security: sec.security }); sec.dnssecStatus() for /health/ready
 * assert.equal(sec.dnssecStatus().validating, false); // until the background DNSSEC probe answers
 * await sec.close(); // writes the TLS-RPT counters file
 * resolver.close();
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import { createDnsResolver, type DnssecStatus, probeDnssec } from "../dns/mod.ts";
import { createStsCache, type StsCache, type StsStore } from "./mta_sts_cache.ts";
import type { Resolver } from "./resolver.ts";
import type { Submitter } from "../queue/mod.ts";
import { createTlsRptCounters, type TlsRptCounters } from "./tls_rpt.ts";
import { startTlsRptReporter, type TlsRptReporter } from "./tls_rpt_reporter.ts";
import type { TransportSecurity } from "./transport_security.ts";

/** The running services. */
export interface TransportSecuritySetup {
  security: TransportSecurity;
  dnssecStatus(): DnssecStatus;
  /** Resolves when the start-up DNSSEC probe has answered. */
  probed: Promise<void>;
  sts?: StsCache;
  rpt?: TlsRptCounters;
  /** The daily TLS-RPT reporter (counters in `<data_dir>/tls-rpt-counters.json`). */
  reporter?: TlsRptReporter;
  /** Stops the refresh and the reporter, and writes the counters file. */
  close(): Promise<void>;
}

/** `message` with the fields `sign` returns on top (RFC 6376: DKIM-Signature goes before the signed header). */
async function prependSignature(
  sign: ((message: Uint8Array, sender: string) => Promise<string>) | undefined,
  message: Uint8Array,
  sender: string,
): Promise<Uint8Array> {
  const fields = sign ? await sign(message, sender) : "";
  if (!fields) return message;
  const head = new TextEncoder().encode(fields);
  const out = new Uint8Array(head.length + message.length);
  out.set(head);
  out.set(message, head.length);
  return out;
}

const readOptional = (path?: string) => path ? Deno.readTextFile(path) : Promise.resolve(undefined);

/**
 * Probes the resolver, loads cached MTA-STS policies from `store` (importing a legacy
 * `<data_dir>/mta-sts-policies.json` once) and starts their refresh, loads the
 * TLS-RPT counters and starts the daily reporter (mailed reports go through `submitter`).
 */
export async function setupTransportSecurity(options: {
  config: Config;
  resolver: Resolver;
  /** Where MTA-STS policies persist (the queue store: shared by a cluster); none: memory only. */
  store?: StsStore;
  log: Logger;
  now?: () => number;
  submitter?: Submitter;
  /** The reporting host name (default: the system's). */
  hostname?: string;
  /** DKIM-Signature fields for a mailed report (the daemon's signer, as for submitted mail); "" leaves it unsigned. */
  sign?: (message: Uint8Array, sender: string) => Promise<string>;
}): Promise<TransportSecuritySetup> {
  const { config, resolver, log } = options;
  const d = config.delivery;
  const probeResolver = createDnsResolver({
    server: d.dns.nameserver?.host ? { host: d.dns.nameserver.host, port: d.dns.nameserver.port } : undefined,
    timeoutMs: d.dns.timeout,
    maxEntries: 10,
  });
  // In the background: start-up does not wait for DNS. Until it answers, DANE is not in effect.
  let status: DnssecStatus = { validating: false, detail: "DNSSEC probe not answered yet", checkedAt: Date.now() };
  const probe = probeDnssec(probeResolver, d.dns.dnssec_probe).then((s) => {
    status = s;
    probeResolver.close();
    if (s.validating) log.info("DNSSEC: {detail}; DANE is in effect", { detail: s.detail });
    else log.warning("DNSSEC: {detail}", { detail: s.detail });
  });
  const stsCa = await readOptional(d.mta_sts.ca_file);
  const sts = d.mta_sts.enabled
    ? await createStsCache({
      store: options.store,
      importFile: options.store ? `${config.data_dir}/mta-sts-policies.json` : undefined,
      onImport: (file, count) =>
        log.info("MTA-STS: imported {count} cached policies from {file} into the queue store and removed the file", {
          count,
          file,
        }),
      onStoreError: (domain, error) =>
        log.warning("MTA-STS: cannot store the policy of {domain}: {error}", { domain, error: String(error) }),
      refreshEveryMs: d.mta_sts.refresh_interval,
      now: options.now,
      fetch: {
        resolver,
        ca: stsCa,
        port: d.mta_sts.policy_port,
        allowPrivate: d.mta_sts.allow_private_policy_hosts,
        timeoutMs: d.mta_sts.fetch_timeout,
        maxBytes: d.mta_sts.max_policy_size,
      },
      onRefresh: (domain, r) =>
        r.error
          ? log.warning("MTA-STS refresh of {domain} failed: {error}", { domain, error: r.error.message })
          : log.info("MTA-STS policy of {domain} refreshed (id {policyId})", { domain, policyId: r.policy?.id }),
    })
    : undefined;
  if (d.mta_sts.allow_private_policy_hosts) {
    log.warning("delivery.mta_sts.allow_private_policy_hosts is on: a TEST-ONLY setting");
  }
  const rpt = d.tls_rpt.enabled ? createTlsRptCounters(options.now) : undefined;
  const submitter = options.submitter;
  const signed = (data: Uint8Array, sender: string) => prependSignature(options.sign, data, sender);
  const reporter = rpt && await startTlsRptReporter({
    counters: rpt,
    resolver,
    file: `${config.data_dir}/tls-rpt-counters.json`,
    hostname: options.hostname ?? Deno.hostname(),
    organization: d.tls_rpt.organization,
    contact: d.tls_rpt.contact,
    sendWindowMs: d.tls_rpt.send_window,
    ca: await readOptional(d.tls_rpt.ca_file),
    log,
    now: options.now,
    submit: submitter && (async ({ data, sender, recipient }) =>
      (await submitter.submit({
        data: await signed(data, sender),
        envelope: {
          sender,
          recipients: [{ address: recipient, notify: ["NEVER"] }],
          client: { address: "127.0.0.1", listener: "tls-rpt" },
          metadata: { tlsRpt: true },
        },
      })).id),
  });
  const ca = await readOptional(d.tls_ca_file);
  return {
    security: { sts, rpt, dnssec: () => status.validating, ca },
    dnssecStatus: () => status,
    probed: probe,
    sts,
    rpt,
    reporter,
    async close() {
      sts?.close();
      probeResolver.close();
      await reporter?.close();
    },
  };
}
