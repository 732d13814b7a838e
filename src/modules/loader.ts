/**
 * Loads the `[[modules]]` of a config: builtins, TypeScript/JavaScript files or
 * URLs (dynamic import; the default export is a factory or a hooks object) and
 * native libraries. Each module is initialised once with its options and a logger.
 * Every problem is a {@link ConfigError} naming the file, the key and the value,
 * so a bad module stops the daemon at start, never later.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfig } from "../config/load.ts";
 * import { loadModules } from "./loader.ts"; // @ts-ignore deno#26900
 *
 * const config = parseConfig(
 *   '[[modules]]\nbuiltin = "denylist"\noptions = { senders = ["@spammer.example"] }\n',
 *   "/etc/empath/config.toml",
 * );
 * const host = await loadModules(config.modules, { configPath: "/etc/empath/config.toml" });
 * assert.deepEqual(host.modules.map((m) => [m.name, m.kind]), [["denylist", "builtin"]]);
 * assert.equal(host.has("mailFrom"), true);
 * await host.close();
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { dirname, isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError } from "../config/load.ts";
import { logger } from "../observability/log.ts";
import { BUILTINS } from "./builtin/mod.ts";
import { defaultModuleName, type ModuleConfig } from "../config/modules.ts";
import { ModuleError, ModuleOptionsError } from "./errors.ts";
import { type LoadedModule, ModuleHost } from "./host.ts";
import { ffiAllowed, loadNativeModule } from "./native.ts";
import { EVENT_HOOKS, type ModuleDefinition, type ModuleHooks, type ModuleInit, VALIDATION_HOOKS } from "./types.ts";

/** Where the config came from (relative paths are resolved against its directory). */
export interface LoadModulesOptions {
  configPath: string;
  /** Host logger (default category ["empath", "modules"]). */
  log?: Logger;
}

const KNOWN = new Set<string>([...VALIDATION_HOOKS, ...EVENT_HOOKS, "close", "init", "name"]);
const INIT_MIN_MS = 30_000;

/** Loads and initialises every configured module, in order. */
export async function loadModules(configs: readonly ModuleConfig[], options: LoadModulesOptions): Promise<ModuleHost> {
  const log = options.log ?? logger("modules");
  const loaded: LoadedModule[] = [];
  try {
    for (const [i, cfg] of configs.entries()) loaded.push(await loadOne(cfg, i, options.configPath, log));
  } catch (err) {
    await new ModuleHost(loaded, log).close();
    throw err;
  }
  for (const m of loaded) {
    const hooks = [...VALIDATION_HOOKS, ...EVENT_HOOKS].filter((h) => typeof m.hooks[h] === "function");
    log.info("module {module} loaded ({kind} {source}): {hooks}", {
      module: m.name,
      kind: m.kind,
      source: m.source,
      hooks: hooks.join(", ") || "no hooks",
    });
  }
  return new ModuleHost(loaded, log);
}

async function loadOne(cfg: ModuleConfig, i: number, configPath: string, log: Logger): Promise<LoadedModule> {
  const name = defaultModuleName(cfg);
  const key = cfg.builtin ? "builtin" : cfg.url ? "url" : "path";
  const value = cfg.builtin ?? cfg.url ?? cfg.path!;
  const fail = (why: string, at = key, shown: unknown = value) =>
    new ConfigError(
      `invalid configuration in ${configPath}:\n  modules[${i}].${at} = ${JSON.stringify(shown)}: ${why}`,
      configPath,
    );
  const init: ModuleInit = { name, options: cfg.options, log: logger("module").getChild(name) };
  const base = { name, timeoutMs: cfg.timeout, onError: cfg.on_error };
  const initFailed = (err: unknown) => {
    if (err instanceof ModuleOptionsError) {
      return new ConfigError(
        `invalid configuration in ${configPath}:\n  ${err.issues.map((l) => `modules[${i}].${l}`).join("\n  ")}`,
        configPath,
        err.issues,
      );
    }
    return fail(`module "${name}" failed to initialise: ${(err as Error)?.message ?? String(err)}`);
  };

  if (cfg.native) {
    if (!ffiAllowed()) {
      throw fail(
        "native modules need the FFI permission: start Empath with --allow-ffi (e.g. deno run -A main.ts, or add --allow-ffi)",
        "native",
        true,
      );
    }
    const path = resolve(dirname(configPath), cfg.path!);
    try {
      return { ...base, kind: "native", source: path, hooks: loadNativeModule(path, name, cfg.options) };
    } catch (err) {
      throw err instanceof ModuleError && err.code === "MODULE_INIT" ? initFailed(err) : fail((err as Error).message);
    }
  }

  if (cfg.builtin) {
    try {
      const hooks = await bounded(Promise.resolve().then(() => BUILTINS[cfg.builtin!](init)), cfg.timeout);
      return { ...base, kind: "builtin", source: cfg.builtin, hooks };
    } catch (err) {
      throw initFailed(err);
    }
  }

  const url = cfg.url
    ? new URL(cfg.url)
    : pathToFileURL(isAbsolute(cfg.path!) ? cfg.path! : resolve(dirname(configPath), cfg.path!));
  let exported: unknown;
  try {
    exported = (await import(url.href)).default;
  } catch (err) {
    throw fail(`cannot load the module: ${(err as Error).message.split("\n")[0]}`);
  }
  let hooks: ModuleHooks;
  try {
    if (typeof exported === "function") {
      hooks = await bounded(
        Promise.resolve().then(() => (exported as (i: ModuleInit) => ModuleHooks)(init)),
        cfg.timeout,
      );
    } else if (exported && typeof exported === "object") {
      const def = exported as ModuleDefinition;
      if (typeof def.init === "function") await bounded(Promise.resolve().then(() => def.init!(init)), cfg.timeout);
      hooks = def;
    } else {
      throw fail(
        "the module has no default export; expected `export default` of a factory function or an object of hooks",
      );
    }
  } catch (err) {
    throw err instanceof ConfigError ? err : initFailed(err);
  }
  if (!hooks || typeof hooks !== "object") throw fail("the factory must return an object of hooks");
  for (const [k, v] of Object.entries(hooks)) {
    if (KNOWN.has(k) && k !== "name" && v !== undefined && typeof v !== "function") {
      throw fail(`hook ${k} is not a function`);
    }
    if (!KNOWN.has(k) && typeof v === "function") {
      log.warning("module {module} has a function {key} that is not a hook (spelling?)", { module: name, key: k });
    }
  }
  return { ...base, kind: "script", source: cfg.url ?? url.pathname, hooks };
}

function bounded<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  const ms = Math.max(timeoutMs, INIT_MIN_MS);
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`initialisation did not finish within ${ms}ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
