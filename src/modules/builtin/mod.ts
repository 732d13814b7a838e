/**
 * Built-in modules, written on the public module API (they double as examples):
 * `allowlist`, `denylist`, `rate_limit`, `add_header`.
 * @module
 */
import type { BUILTIN_NAMES } from "../../config/modules.ts";
import type { ModuleFactory } from "../types.ts";
import addHeader from "./add_header.ts";
import allowlist from "./allowlist.ts";
import denylist from "./denylist.ts";
import rateLimit from "./rate_limit.ts";

/** Factory per builtin name (`builtin = "…"` in config). */
export const BUILTINS: Record<typeof BUILTIN_NAMES[number], ModuleFactory> = {
  allowlist,
  denylist,
  rate_limit: rateLimit,
  add_header: addHeader,
};

export { compilePatterns, isPattern } from "./patterns.ts";
export { createRateLimit } from "./rate_limit.ts";
