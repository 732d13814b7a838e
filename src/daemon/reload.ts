/**
 * Config hot reload: watches the config file's directory (Deno.watchFs) and applies a
 * valid new version at runtime. Watching the directory, not the file, keeps working after
 * a save by rename (`sed -i`, most editors, Ansible, Kubernetes ConfigMaps swap a symlink):
 * a watch on the file would stay on the old inode. Any event in the directory re-reads the
 * file; a reload happens only when its text changed.
 *
 * Everything read through the daemon's live config getter (relay policy, SMTP session
 * limits and data checks, delivery and DSN settings, per-domain policies, log level)
 * changes at once; settings bound at start ({@link restartBound}) are reported as needing a
 * restart — compared with the config the daemon started with, so the report is right
 * however many reloads (by the watcher or by `empathctl system reload-config`) came first.
 * An invalid file is logged and ignored: the running config stays.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { loadConfig } from "../config/load.ts";
 * import { reloadConfig } from "./reload.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/config.toml`;
 * await Deno.writeTextFile(path, "");
 * const { config: started } = await loadConfig(path); // relative paths resolved against the file's directory
 * let live = started;
 * await Deno.writeTextFile(path, "[relay]\nlocal_domains = [\"example.com\"]\n");
 * // watchConfig({ ...options, onResult }) runs this on every change in the file's directory:
 * const options = { path, started, current: () => live, apply: (next: typeof live) => live = next, log: getLogger(["empath"]) };
 * const result = await reloadConfig(options);
 * assert.equal(result.ok, true);
 * assert.deepEqual(result.changed, ["relay"]);
 * assert.deepEqual(live.relay.local_domains, ["example.com"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { dirname, resolve } from "node:path";
import type { Logger } from "@logtape/logtape";
import { type Config, loadConfig } from "../config/mod.ts";
import { setLogLevel } from "../observability/log.ts";

/** Top-level sections bound at start: a change waits for a restart. */
const RESTART_SECTIONS = [
  "listeners",
  "data_dir",
  "queue",
  "tls",
  "auth",
  "http",
  "spool",
  "modules",
  "control",
  "audit",
  "web",
] as const;

/** Settings inside runtime sections that are bound at start (dotted paths). */
const RESTART_PATHS = [
  "smtp.hostname",
  "smtp.banner",
  "smtp.max_message_size",
  "smtp.max_connections",
  "smtp.max_recipients",
  "smtp.timeouts.command",
  "delivery.dns",
  "delivery.pool",
  "log.format",
] as const;

/** The outcome of one reload. */
export interface ReloadResult {
  ok: boolean;
  error?: string;
  /** Top-level sections this reload changed in the running config (empty when an earlier reload applied them). */
  changed: string[];
  /** Sections that differ from the config at start and are in effect now. */
  applied: string[];
  /** Settings that differ from the config at start and wait for a restart. */
  needsRestart: string[];
}

const at = (config: Config, path: string): unknown =>
  path.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);
const differs = (a: unknown, b: unknown) => JSON.stringify(a) !== JSON.stringify(b);

/** The restart-bound settings that differ between two configs (sections and dotted paths). */
export function restartBound(started: Config, next: Config): string[] {
  return [
    ...RESTART_SECTIONS.filter((k) => differs(started[k], next[k])),
    ...RESTART_PATHS.filter((p) => differs(at(started, p), at(next, p))),
  ];
}

/** What {@link reloadConfig} and {@link watchConfig} need. */
export interface ReloadOptions {
  path: string;
  /** The config the daemon started with (what restart-bound settings still are). */
  started: Config;
  current: () => Config;
  apply: (next: Config) => void;
  log: Logger;
}

/** Re-reads the file and applies what can change at runtime. */
export async function reloadConfig(options: ReloadOptions): Promise<ReloadResult> {
  const { path, started, current, apply, log } = options;
  let next: Config;
  try {
    next = (await loadConfig(path)).config;
  } catch (err) {
    const error = (err as Error).message;
    log.error("config reload rejected, keeping the running config: {error}", { error });
    return { ok: false, error, changed: [], applied: [], needsRestart: [] };
  }
  const before = current();
  const keys = Object.keys(next) as (keyof Config)[];
  const changed = keys.filter((k) => differs(before[k], next[k]));
  const needsRestart = restartBound(started, next);
  const applied = keys.filter((k) =>
    !(RESTART_SECTIONS as readonly string[]).includes(k) && differs(started[k], next[k])
  );
  apply(next);
  if (before.log.level !== next.log.level) await setLogLevel(next.log.level);
  log.info("config reloaded from {path}: changed {changed}; needs a restart: {restart}", {
    path,
    changed: changed.join(", ") || "nothing",
    restart: needsRestart.join(", ") || "nothing",
    applied: applied.join(", ") || "nothing",
  });
  return { ok: true, changed, applied, needsRestart };
}

/** Watches the file's directory and reloads when the file's text changes (debounced). Returns a stop function. */
export function watchConfig(options: ReloadOptions & { onResult?: (result: ReloadResult) => void }): () => void {
  const { log } = options;
  const path = resolve(options.path);
  const dir = dirname(path);
  let watcher: Deno.FsWatcher;
  try {
    watcher = Deno.watchFs(dir, { recursive: false });
  } catch (err) {
    log.warning("cannot watch {path} for changes: {error}", { path, error: (err as Error).message });
    return () => {};
  }
  // The text last seen, so events for other files in the directory (or a rewrite with the same text) do nothing.
  let seen: Promise<string | undefined> = Deno.readTextFile(path).catch(() => undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = async () => {
    const text = await Deno.readTextFile(path).catch(() => undefined);
    if (text === undefined || text === await seen) return; // mid-rename, deleted, or unchanged
    seen = Promise.resolve(text);
    options.onResult?.(await reloadConfig(options));
  };
  (async () => {
    try {
      for await (const event of watcher) {
        // Any change in the directory may be ours: the file written in place, a temp file renamed
        // over it, or a ConfigMap's `..data` symlink swapped. check() compares the text.
        if (event.kind === "access") continue;
        clearTimeout(timer);
        timer = setTimeout(() => void check().catch(() => {}), 200);
      }
    } catch { /* closed */ }
  })();
  return () => {
    clearTimeout(timer);
    try {
      watcher.close();
    } catch { /* already closed */ }
  };
}
