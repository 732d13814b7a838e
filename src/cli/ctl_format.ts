/**
 * Text output helpers for `empathctl`: aligned tables, ages and sizes.
 * @module
 */

/** Renders rows as left-aligned columns with a header line. */
export function table(headers: string[], rows: (string | number | undefined | null)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === undefined || c === null ? "-" : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd();
  return [line(headers), ...cells.map(line)].join("\n");
}

/** 95 → "1m35s", 7200 → "2h0m", 200000 → "2d7h". */
export function age(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/** Age of an epoch-ms time, from now. */
export const since = (ms: number) => age((Date.now() - ms) / 1000);

/** Time until an epoch-ms time ("now" when past). */
export const until = (ms: number) => (ms <= Date.now() ? "now" : `in ${age((ms - Date.now()) / 1000)}`);

/** 4096 → "4.0K". */
export function bytes(n: number): string {
  if (n < 1024) return `${n}B`;
  const units = ["K", "M", "G", "T"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)}${units[u]}`;
}

/** Cuts long text for a table cell. */
export const clip = (s: string | undefined, n = 60) => (!s ? s : s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** ISO time without milliseconds. */
export const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
