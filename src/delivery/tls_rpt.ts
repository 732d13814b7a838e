/**
 * TLS-RPT counters (RFC 8460): per UTC day, per recipient domain and per policy
 * (sts, tlsa, no-policy-found), the successful sessions and the failures by result type.
 * `empathctl tls report` shows them; the daily reporter turns a finished day into reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createTlsRptCounters } from "./tls_rpt.ts"; // @ts-ignore deno#26900
 * const c = createTlsRptCounters(() => Date.UTC(2026, 0, 2, 12));
 * c.record({ domain: "example.com", policy: { type: "no-policy-found" }, success: true });
 * assert.equal(c.summary({ day: "2026-01-02" })[0]?.successful, 1);
 * ```
 * @module
 */

/** RFC 8460 4.3 result types. */
export type TlsRptResult =
  | "starttls-not-supported"
  | "certificate-host-mismatch"
  | "certificate-expired"
  | "certificate-not-trusted"
  | "validation-failure"
  | "tlsa-invalid"
  | "dnssec-invalid"
  | "dane-required"
  | "sts-policy-fetch-error"
  | "sts-policy-invalid"
  | "sts-webpki-invalid";

/** The policy a session was held to. */
export interface TlsRptPolicy {
  type: "sts" | "tlsa" | "no-policy-found";
  /** The policy as text lines (the STS policy file, or TLSA records in presentation form). */
  strings?: string[];
  /** MX patterns of an STS policy. */
  mxHosts?: string[];
}

/** One session outcome. */
export interface TlsRptEvent {
  domain: string;
  policy: TlsRptPolicy;
  success: boolean;
  result?: TlsRptResult;
  mxHost?: string;
  receivingIp?: string;
  sendingIp?: string;
  detail?: string;
}

/** A failure detail row (RFC 8460 4.4). */
export interface TlsRptFailure {
  result: TlsRptResult;
  mxHost?: string;
  receivingIp?: string;
  sendingIp?: string;
  detail?: string;
  count: number;
}

/** The counters of one day, domain and policy. */
export interface TlsRptSummary {
  day: string;
  domain: string;
  policy: TlsRptPolicy;
  successful: number;
  failed: number;
  failures: TlsRptFailure[];
}

/** The counters. */
export interface TlsRptCounters {
  record(event: TlsRptEvent): void;
  /** Rows for a day (default today, UTC) and optionally one domain. */
  summary(filter?: { day?: string; domain?: string }): TlsRptSummary[];
  /** Forgets days before `day` (after their reports went out). */
  dropBefore(day: string): void;
  /** Today's date (UTC, YYYY-MM-DD) by the counters' clock. */
  today(): string;
  /** Every row of every day kept (for persistence and the daily reporter). */
  all(): TlsRptSummary[];
  /** Adds rows read back after a restart (before anything is recorded). */
  restore(rows: TlsRptSummary[]): void;
  /** Called after every change (record, dropBefore, restore). */
  onChange?: () => void;
}

/** UTC YYYY-MM-DD of an epoch-ms time. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Creates in-memory counters with an injectable clock. */
export function createTlsRptCounters(now: () => number = Date.now): TlsRptCounters {
  const rows = new Map<string, TlsRptSummary>();
  const keyOf = (day: string, domain: string, policy: TlsRptPolicy) =>
    JSON.stringify([day, domain, policy.type, policy.strings ?? []]);
  const counters: TlsRptCounters = {
    record(e) {
      const day = utcDay(now());
      const domain = e.domain.toLowerCase();
      const key = keyOf(day, domain, e.policy);
      let row = rows.get(key);
      if (!row) rows.set(key, row = { day, domain, policy: e.policy, successful: 0, failed: 0, failures: [] });
      counters.onChange?.();
      if (e.success) {
        row.successful++;
        return;
      }
      row.failed++;
      const result = e.result ?? "validation-failure";
      const f = row.failures.find((x) =>
        x.result === result && x.mxHost === e.mxHost && x.receivingIp === e.receivingIp
      );
      if (f) f.count++;
      else {
        row.failures.push({
          result,
          mxHost: e.mxHost,
          receivingIp: e.receivingIp,
          sendingIp: e.sendingIp,
          detail: e.detail,
          count: 1,
        });
      }
    },
    summary(filter = {}) {
      const day = filter.day ?? utcDay(now());
      const domain = filter.domain?.toLowerCase();
      return [...rows.values()].filter((r) => r.day === day && (!domain || r.domain === domain));
    },
    dropBefore(day) {
      for (const [key, r] of rows) if (r.day < day) rows.delete(key);
      counters.onChange?.();
    },
    today: () => utcDay(now()),
    all: () => [...rows.values()],
    restore(restored) {
      for (const r of restored) rows.set(keyOf(r.day, r.domain, r.policy), r);
      counters.onChange?.();
    },
  };
  return counters;
}
