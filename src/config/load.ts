/**
 * Reads and validates config.toml. Every failure becomes a {@link ConfigError}
 * naming the file, the key path, the bad value and what was expected.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError, loadConfig } from "./load.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/config.toml`, '[[listeners]]\naddress = "127.0.0.1:2525"\n');
 * const { config, path } = await loadConfig(`${dir}/config.toml`);
 * assert.equal(path, `${dir}/config.toml`);
 * assert.equal(config.listeners[0]?.address.port, 2525);
 * await Deno.writeTextFile(`${dir}/config.toml`, '[[listeners]]\naddress = "nowhere"\n');
 * await assert.rejects(loadConfig(`${dir}/config.toml`), ConfigError); // names file, key, value and what was expected
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { parse as parseToml, TomlError } from "smol-toml";
import type { z } from "zod";
import { type Config, configSchema } from "./schema.ts";
import { dirname, resolve } from "node:path";
import { resolveConfigPaths } from "./paths.ts";

/** Exit code for configuration errors (EX_CONFIG from sysexits.h). */
export const EX_CONFIG = 78;

/** A configuration file problem; `message` is ready to print. */
export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
  constructor(message: string, readonly file: string, readonly issues: string[] = []) {
    super(message);
    this.name = "ConfigError";
  }
}

/** A loaded config with where it came from. */
export interface LoadedConfig {
  config: Config;
  path: string;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let cur = raw;
  for (const key of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function keyPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (acc, k) => typeof k === "number" ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k),
    "",
  );
}

function describeIssue(raw: unknown, issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") {
    const at = keyPath(issue.path);
    return issue.keys.map((k) =>
      `${at ? `${at}.` : ""}${k}: unknown key (check the spelling; see README "Configuration")`
    )
      .join("\n  ");
  }
  const at = keyPath(issue.path) || "(top level)";
  const value = valueAt(raw, issue.path);
  const shown = value === undefined ? "missing" : JSON.stringify(value);
  let expected = issue.message;
  if (issue.code === "invalid_key") {
    const key = JSON.stringify(String(issue.path.at(-1)));
    return `${keyPath(issue.path.slice(0, -1))}: ${key} is not a valid key: ${
      issue.issues[0]?.message ?? issue.message
    }`;
  }
  if (issue.code === "invalid_value") {
    expected = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  }
  return `${at} = ${shown}: ${expected}`;
}

/** Validates an already-parsed TOML object. */
export function validateConfig(raw: unknown, file: string): Config {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => describeIssue(raw, i));
  throw new ConfigError(`invalid configuration in ${file}:\n  ${issues.join("\n  ")}`, file, issues);
}

/** Parses TOML text and validates it. */
export function parseConfig(text: string, file: string): Config {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    const detail = err instanceof TomlError
      ? `line ${err.line}, column ${err.column}: ${err.message.split("\n")[0]}`
      : String(err);
    throw new ConfigError(`${file}: not valid TOML (${detail})`, file);
  }
  return validateConfig(raw, file);
}

/**
 * Reads, parses and validates a config file. Relative paths in it (data_dir, certificates, users
 * and key files, sockets, modules, …) come back absolute, resolved against the file's directory
 * (see paths.ts): the one rule, whatever the working directory.
 */
export async function loadConfig(path: string): Promise<LoadedConfig> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await Deno.readTextFile(abs);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "file not found" : (err as Error).message;
    throw new ConfigError(`${abs}: cannot read config (${why})`, abs);
  }
  return { config: resolveConfigPaths(parseConfig(text, abs), dirname(abs)), path: abs };
}

/** Which config file to use: --config flag, then EMPATH_CONFIG, then ./config.toml. */
export function configPathFrom(flag: string | undefined): string {
  return flag ?? Deno.env.get("EMPATH_CONFIG") ?? "config.toml";
}
