/**
 * The `[[modules]]` config tables (the schema lives in config/; modules/ reads it).
 * Exactly one of `builtin`, `path` or `url` says where the module comes from;
 * `native = true` makes `path` a shared library.
 *
 * ```toml
 * [[modules]]
 * path = "./modules/tagger.ts"     # relative to the config file
 * timeout = "2s"                   # per hook call (default 5s)
 * on_error = "tempfail"            # or "accept"
 * options = { tag = "vip" }
 * ```
 * @module
 */
import { z } from "zod";
import { duration } from "./types.ts";

/** Built-in module names (implemented in src/modules/builtin/). */
export const BUILTIN_NAMES = ["allowlist", "denylist", "rate_limit", "add_header"] as const;

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** One `[[modules]]` table. */
export const moduleConfig = z.strictObject({
  /** Instance name: metadata namespace and log category. Default: builtin name or file name. */
  name: z.string().regex(NAME, { error: "expected a name of letters, digits, '_', '.' or '-' (at most 64)" })
    .optional(),
  builtin: z.enum(BUILTIN_NAMES, {
    error: `expected one of ${BUILTIN_NAMES.map((n) => JSON.stringify(n)).join(", ")}`,
  }).optional(),
  /** A TypeScript/JavaScript file (or with native = true a shared library), relative to the config file. */
  path: z.string().min(1, { error: "expected a file path" }).optional(),
  /** A module URL (https:, file:, …); remote URLs need --allow-import for their host. */
  url: z.url({ error: 'expected a URL like "https://example.com/mod.ts"' }).optional(),
  /** A C module loaded with Deno.dlopen; needs --allow-ffi. */
  native: z.boolean().default(false),
  /** Time budget of each hook call. */
  timeout: duration.default(5_000),
  /** What a throwing or timed-out validation hook means: 4xx ("tempfail") or no objection ("accept"). */
  on_error: z.enum(["tempfail", "accept"], { error: 'expected "tempfail" (4xx) or "accept"' }).default("tempfail"),
  /** Free-form options handed to the module. */
  options: z.record(z.string(), z.unknown()).default({}),
});

/** One module's validated config. */
export type ModuleConfig = z.output<typeof moduleConfig>;

/** The instance name a module gets when `name` is not set. */
export function defaultModuleName(m: Pick<ModuleConfig, "name" | "builtin" | "path" | "url">): string {
  if (m.name) return m.name;
  if (m.builtin) return m.builtin;
  const source = m.path ?? m.url ?? "module";
  const base = source.split(/[/\\]/).pop()!.replace(/^lib/, "").replace(/\.[^.]*$/, "");
  return base.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 64) || "module";
}

/** The `modules` array: sources are unambiguous and instance names unique. */
export const modulesConfig = z.array(moduleConfig).default([]).superRefine((list, ctx) => {
  const seen = new Map<string, number>();
  list.forEach((m, i) => {
    const sources = (["builtin", "path", "url"] as const).filter((k) => m[k] !== undefined);
    if (sources.length !== 1) {
      ctx.addIssue({
        code: "custom",
        path: [i, sources[1] ?? "path"],
        message: sources.length === 0
          ? 'expected one of builtin = "…", path = "…" or url = "…"'
          : `set only one of builtin, path and url (found ${sources.join(" and ")})`,
      });
      return;
    }
    if (m.native && !m.path) {
      ctx.addIssue({ code: "custom", path: [i, "native"], message: "a native module needs path = the shared library" });
    }
    const name = defaultModuleName(m);
    const first = seen.get(name);
    if (first !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [i, "name"],
        message: `modules[${first}] already uses the name "${name}"; give each instance its own name = "…"`,
      });
    } else seen.set(name, i);
  });
});
