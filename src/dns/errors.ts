/**
 * DNS failures as callers see them.
 * @module
 */

/** DNS failures; `permanent` says whether retrying can help (NXDOMAIN and NODATA are answers, not trouble). */
export class DnsError extends Error {
  constructor(
    message: string,
    readonly code: "NXDOMAIN" | "NODATA" | "TEMPFAIL" | "NULL_MX",
    readonly permanent: boolean,
    /** The resolver's RCODE when it answered ("SERVFAIL", "REFUSED", …). */
    readonly rcode?: string,
    /** The negative answer was DNSSEC-validated (authenticated denial of existence). */
    readonly ad = false,
  ) {
    super(message);
    this.name = "DnsError";
  }
}
