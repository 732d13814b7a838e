/**
 * Next-hop overrides per domain: `mx_override` from `[delivery.domains]` plus the
 * ones an operator sets at runtime (which win; the engine stores them, see operator_state.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfig } from "../config/load.ts";
 * import { createOverrides } from "./overrides.ts"; // @ts-ignore deno#26900
 *
 * const config = parseConfig("", "config.toml");
 * const overrides = createOverrides(() => config);
 * overrides.set("example.com", { host: "10.0.0.5", port: 25 });
 * assert.deepEqual(overrides.all().get("example.com"), { host: "10.0.0.5", port: 25 });
 * assert.equal(overrides.remove("example.com"), true);
 * ```
 * @module
 */
import type { Config } from "../config/mod.ts";
import { nextHop } from "./router.ts";

/** A host and port to send a domain's mail to. */
export interface NextHop {
  host: string;
  port: number;
}

/** Configured and runtime overrides. */
export interface Overrides {
  set(domain: string, target: NextHop): void;
  /** False when no runtime override existed. */
  remove(domain: string): boolean;
  /** Configured overrides, then runtime ones on top. */
  all(): Map<string, NextHop>;
}

/** Creates the override table. */
export function createOverrides(config: () => Config): Overrides {
  const runtime = new Map<string, NextHop>();
  return {
    set: (domain, target) => void runtime.set(domain.toLowerCase(), target),
    remove: (domain) => runtime.delete(domain.toLowerCase()),
    all() {
      const map = new Map<string, NextHop>();
      for (const [domain, p] of Object.entries(config().delivery.domains)) {
        const hop = nextHop(p.mx_override);
        if (hop) map.set(domain, hop);
      }
      for (const [domain, t] of runtime) map.set(domain, t);
      return map;
    },
  };
}
