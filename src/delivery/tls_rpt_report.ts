/**
 * TLS-RPT reports (RFC 8460): the aggregate JSON of one day and one policy domain
 * (section 4), the reporting policy from `_smtp._tls.<domain>` TXT (section 3), and the
 * mail form of a report: multipart/report; report-type="tlsrpt" with the gzipped JSON
 * attached (section 5.3).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildTlsRpt, parseTlsRptRecord } from "./tls_rpt_report.ts"; // @ts-ignore deno#26900
 *
 * const report = buildTlsRpt({
 *   day: "2026-01-02",
 *   domain: "example.com",
 *   rows: [{ day: "2026-01-02", domain: "example.com", policy: { type: "no-policy-found" }, successful: 3, failed: 0, failures: [] }],
 *   organization: "Example Sender",
 *   contact: "postmaster@sender.example",
 *   reportId: "r1",
 * });
 * assert.equal(report.policies[0]?.summary["total-successful-session-count"], 3);
 * assert.deepEqual(parseTlsRptRecord("v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.com/tls"), [
 *   "mailto:tls@example.com",
 *   "https://r.example.com/tls",
 * ]);
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { gzipSync } from "node:zlib";
import type { TlsRptSummary } from "./tls_rpt.ts";

/** One policy's block of a report (RFC 8460 4.4). */
export interface TlsRptPolicyReport {
  policy: {
    "policy-type": "sts" | "tlsa" | "no-policy-found";
    "policy-string"?: string[];
    "policy-domain": string;
    "mx-host"?: string[];
  };
  summary: { "total-successful-session-count": number; "total-failure-session-count": number };
  "failure-details"?: {
    "result-type": string;
    "sending-mta-ip"?: string;
    "receiving-mx-hostname"?: string;
    "receiving-ip"?: string;
    "failed-session-count": number;
    "failure-reason-code"?: string;
  }[];
}

/** The aggregate report (RFC 8460 4.3). */
export interface TlsRptReport {
  "organization-name": string;
  "date-range": { "start-datetime": string; "end-datetime": string };
  "contact-info": string;
  "report-id": string;
  policies: TlsRptPolicyReport[];
}

/** What a report is made of. */
export interface TlsRptReportInput {
  /** The UTC day (YYYY-MM-DD). */
  day: string;
  /** The policy domain. */
  domain: string;
  /** The counters of that day and domain. */
  rows: TlsRptSummary[];
  organization: string;
  contact: string;
  reportId: string;
}

/** Builds the JSON report of one day and domain. */
export function buildTlsRpt(input: TlsRptReportInput): TlsRptReport {
  return {
    "organization-name": input.organization,
    "date-range": { "start-datetime": `${input.day}T00:00:00Z`, "end-datetime": `${input.day}T23:59:59Z` },
    "contact-info": input.contact,
    "report-id": input.reportId,
    policies: input.rows.map((r) => ({
      policy: {
        "policy-type": r.policy.type,
        ...(r.policy.strings?.length ? { "policy-string": r.policy.strings } : {}),
        "policy-domain": r.domain,
        ...(r.policy.mxHosts?.length ? { "mx-host": r.policy.mxHosts } : {}),
      },
      summary: { "total-successful-session-count": r.successful, "total-failure-session-count": r.failed },
      ...(r.failures.length
        ? {
          "failure-details": r.failures.map((f) => ({
            "result-type": f.result,
            ...(f.sendingIp ? { "sending-mta-ip": f.sendingIp } : {}),
            ...(f.mxHost ? { "receiving-mx-hostname": f.mxHost } : {}),
            ...(f.receivingIp ? { "receiving-ip": f.receivingIp } : {}),
            "failed-session-count": f.count,
            ...(f.detail ? { "failure-reason-code": f.detail.slice(0, 200) } : {}),
          })),
        }
        : {}),
    })),
  };
}

/** The report gzipped, as it is mailed or posted (`application/tlsrpt+gzip`). */
export const gzipReport = (report: TlsRptReport): Uint8Array<ArrayBuffer> =>
  new Uint8Array(gzipSync(new TextEncoder().encode(JSON.stringify(report))));

/** The `rua` URIs of a `_smtp._tls` TXT record, or undefined when it is not a TLSRPTv1 record. */
export function parseTlsRptRecord(txt: string): string[] | undefined {
  const fields = txt.split(";").map((f) => f.trim());
  if (fields[0] !== "v=TLSRPTv1") return undefined;
  const rua = fields.find((f) => /^rua=/i.test(f));
  if (!rua) return undefined;
  return rua.slice(4).split(",").map((u) => u.trim())
    .filter((u) => /^mailto:[^@\s]+@[^@\s]+$/i.test(u) || /^https:\/\/\S+$/i.test(u));
}

/** RFC 8460 5.1 file name: `sender!policy-domain!begin!end!id.json.gz` (begin/end: epoch seconds). */
export function reportFileName(submitter: string, report: TlsRptReport, domain: string): string {
  const s = (iso: string) => Math.floor(Date.parse(iso) / 1000);
  const range = report["date-range"];
  const id = report["report-id"].replace(/[^A-Za-z0-9._-]/g, "");
  return `${submitter}!${domain}!${s(range["start-datetime"])}!${s(range["end-datetime"])}!${id}.json.gz`;
}

const wrap76 = (b64: string) => b64.replace(/.{1,76}/g, "$&\r\n");

/** The report as a message (RFC 8460 5.3): multipart/report; report-type="tlsrpt". */
export function reportMessage(options: {
  report: TlsRptReport;
  domain: string;
  /** The reporting host (TLS-Report-Submitter, file name). */
  submitter: string;
  from: string;
  to: string;
  now: number;
}): Uint8Array {
  const { report, domain, submitter } = options;
  const boundary = `tlsrpt-${crypto.randomUUID()}`;
  const id = report["report-id"];
  const file = reportFileName(submitter, report, domain);
  const gz = Buffer.from(gzipReport(report)).toString("base64");
  const text = `This is an aggregate TLS report from ${submitter} for ${domain}, ` +
    `${report["date-range"]["start-datetime"]} to ${report["date-range"]["end-datetime"]}.\r\n`;
  const lines = [
    `From: ${options.from}`,
    `To: ${options.to}`,
    `Date: ${new Date(options.now).toUTCString().replace("GMT", "+0000")}`,
    `Subject: Report Domain: ${domain} Submitter: ${submitter} Report-ID: <${id}>`,
    `Message-ID: <${id}@${submitter}>`,
    `TLS-Report-Domain: ${domain}`,
    `TLS-Report-Submitter: ${submitter}`,
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; report-type="tlsrpt"; boundary="${boundary}"`,
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=us-ascii",
    "",
    text,
    `--${boundary}`,
    `Content-Type: application/tlsrpt+gzip; name="${file}"`,
    "Content-Transfer-Encoding: base64",
    `Content-Disposition: attachment; filename="${file}"`,
    "",
    wrap76(gz),
    `--${boundary}--`,
    "",
  ];
  return new TextEncoder().encode(lines.join("\r\n"));
}
