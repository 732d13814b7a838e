/**
 * `[delivery.mta_sts]` and `[delivery.tls_rpt]`: MTA-STS policy fetching (RFC 8461)
 * and TLS-RPT daily reports (RFC 8460). DANE needs no table: it is in effect when the
 * resolver validates DNSSEC (see `[delivery.dns] dnssec_probe`).
 * @module
 */
import { z } from "zod";
import { duration, size } from "./types.ts";

/** `[delivery.mta_sts]`. */
export const mtaStsConfig = z.strictObject({
  enabled: z.boolean().default(true),
  /** Extra CA certificates (PEM file) trusted for policy hosts, next to the system roots. */
  ca_file: z.string().optional(),
  /** RFC 8461 3.3 limits. */
  fetch_timeout: duration.default(60_000),
  max_policy_size: size.default(65_536),
  /** How often cached policies are checked for refresh (each is refreshed in the second half of its max_age). */
  refresh_interval: duration.default(3_600_000),
  /** TEST ONLY: policy hosts on loopback/private addresses are refused unless this is true. */
  allow_private_policy_hosts: z.boolean().default(false),
  /** TEST ONLY: HTTPS port of policy hosts (RFC 8461: 443). */
  policy_port: z.number().int().min(1).max(65535).default(443),
});

/** `[delivery.tls_rpt]`. */
export const tlsRptConfig = z.strictObject({
  enabled: z.boolean().default(true),
  /** organization-name in reports; default the host name. */
  organization: z.string().optional(),
  /** contact-info in reports and the From of mailed reports; default postmaster@<hostname>. */
  contact: z.string().optional(),
  /** Reports go out at a random time in this window after 00:00 UTC (RFC 8460 4.1 asks for spread). */
  send_window: duration.default(4 * 3_600_000),
  /** Extra CA certificates (PEM file) trusted for HTTPS report endpoints. */
  ca_file: z.string().optional(),
});
