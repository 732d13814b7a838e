/**
 * Builds the transport security services from the config: the DNSSEC probe (DANE is in
 * effect only with a validating resolver), the MTA-STS cache (persisted under the data
 * directory) and the TLS-RPT counters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { parseConfig } from "../config/load.ts";
 * import { createResolver } from "./resolver.ts";
 * import { setupTransportSecurity } from "./security_setup.ts"; // @ts-ignore deno#26900
 *
 * const config = parseConfig("", "config.toml");
 * const resolver = createResolver();
 * const sec = await setupTransportSecurity({ config, resolver, log: getLogger(["empath"]) });
 * // createDeliveryEngine({ …, security: sec.security }); sec.dnssecStatus() for /health/ready
 * assert.equal(sec.dnssecStatus().validating, false); // until the background DNSSEC probe answers
 * sec.close();
 * resolver.close();
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import { createDnsResolver, type DnssecStatus, probeDnssec } from "../dns/mod.ts";
import { createStsCache, type StsCache } from "./mta_sts_cache.ts";
import type { Resolver } from "./resolver.ts";
import { createTlsRptCounters, type TlsRptCounters } from "./tls_rpt.ts";
import type { TransportSecurity } from "./transport_security.ts";

/** The running services. */
export interface TransportSecuritySetup {
  security: TransportSecurity;
  dnssecStatus(): DnssecStatus;
  /** Resolves when the start-up DNSSEC probe has answered. */
  probed: Promise<void>;
  sts?: StsCache;
  rpt?: TlsRptCounters;
  close(): void;
}

const readOptional = (path?: string) => path ? Deno.readTextFile(path) : Promise.resolve(undefined);

/** Probes the resolver, loads cached MTA-STS policies and starts their refresh. */
export async function setupTransportSecurity(options: {
  config: Config;
  resolver: Resolver;
  log: Logger;
  now?: () => number;
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
      file: `${config.data_dir}/mta-sts-policies.json`,
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
  const ca = await readOptional(d.tls_ca_file);
  return {
    security: { sts, rpt, dnssec: () => status.validating, ca },
    dnssecStatus: () => status,
    probed: probe,
    sts,
    rpt,
    close() {
      sts?.close();
      probeResolver.close();
    },
  };
}
