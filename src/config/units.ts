/**
 * Human-friendly units used in config files: durations ("30s", "5m", "4h", "5d", "250ms")
 * and sizes ("25MB", "512KiB", "1GB", "100").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration, parseDuration, parseSize } from "./units.ts"; // @ts-ignore deno#26900
 *
 * assert.equal(parseDuration("5m"), 300_000);
 * assert.equal(parseSize("25MB"), 25_000_000);
 * assert.equal(parseDuration("soon"), undefined);
 * assert.equal(formatDuration(330_000), "5m30s");
 * ```
 * @module
 */

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
};

/** Parses "30s", "5m", "1h30m", "250ms" into milliseconds; returns undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let matched = 0;
  for (const m of trimmed.matchAll(re)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!; // the regex only matches known units
    matched += m[0].length;
  }
  return matched === trimmed.length && matched > 0 ? Math.round(total) : undefined;
}

/** Parses "25MB", "512KiB", "1000" into bytes; returns undefined if malformed. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  return unit === undefined ? undefined : Math.round(Number(m[1]) * unit);
}

/** Formats milliseconds as a short human duration ("2h", "5m30s", "250ms"). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, secs] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    if (rest >= secs) {
      parts.push(`${Math.floor(rest / secs)}${unit}`);
      rest %= secs;
    }
  }
  return parts.join("");
}
