/**
 * `empathctl dkim check` answers as text.
 * @module
 */
import type { DkimCheckResult } from "../control/mod.ts";

/** `dkim check` as text. */
export function dkimCheckText(r: DkimCheckResult): string {
  const lines = r.keys.map((k) =>
    `${k.ok ? "ok  " : "FAIL"} ${k.name} (${k.type}${k.active ? ", signing now" : ", not in its window"}): ${
      k.ok ? "published record matches the private key" : k.reason
    }${!k.ok && k.expected ? `\n     publish: "${k.expected}"` : ""}`
  );
  return lines.join("\n");
}
