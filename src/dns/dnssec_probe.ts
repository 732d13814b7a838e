/**
 * Does the configured resolver validate DNSSEC? Asks for a name in a signed zone (the
 * root by default) and looks at the AD bit. DANE needs a validating resolver; without
 * one Empath delivers as it would without DANE and says so (log, /health/ready).
 * @module
 */
import type { DnsResolver } from "./resolver.ts";

/** The probe's finding. */
export interface DnssecStatus {
  validating: boolean;
  /** What was asked and what came back, for the log and /health/ready. */
  detail: string;
  checkedAt: number;
}

/** Asks `name` SOA (default the root zone) and reports whether the answer carried AD. */
export async function probeDnssec(resolver: DnsResolver, name = "."): Promise<DnssecStatus> {
  const checkedAt = Date.now();
  try {
    const answer = await resolver.lookup(name, "SOA");
    return answer.ad
      ? { validating: true, detail: `the resolver validates DNSSEC (AD set for ${name} SOA)`, checkedAt }
      : {
        validating: false,
        detail: `the resolver does not validate DNSSEC (no AD for ${name} SOA): DANE is not in effect`,
        checkedAt,
      };
  } catch (err) {
    return {
      validating: false,
      detail: `DNSSEC probe (${name} SOA) failed: ${(err as Error).message}: DANE is not in effect`,
      checkedAt,
    };
  }
}
