/**
 * RFC 5322 3.3 date-time for header fields (Date:, Received:, DSN Arrival-Date).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rfc5322Date } from "./date.ts"; // @ts-ignore deno#26900
 *
 * assert.equal(rfc5322Date(new Date(Date.UTC(2026, 10, 24, 2, 13, 12))), "Tue, 24 Nov 2026 02:13:12 +0000");
 * ```
 * @module
 */

/** RFC 5322 date-time in UTC, e.g. "Tue, 24 Nov 2026 02:13:12 +0000". */
export function rfc5322Date(date: Date): string {
  return date.toUTCString().replace(/GMT$/, "+0000");
}
