/**
 * Config hot reload: watches the config file (Deno.watchFs) and applies a valid new
 * version at runtime. Everything read through the daemon's live config getter
 * (relay policy, SMTP limits and data checks, delivery and DSN settings, per-domain
 * policies, log level) changes at once; settings bound at start (listeners, TLS
 * files, data_dir, queue backend, HTTP address, DNS server, and the smtp-server
 * options SIZE, max connections/recipients, banner and command timeout) are
 * reported as needing a restart. An invalid file is logged and ignored: the running config stays.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { parseConfig } from "../config/load.ts";
 * import { reloadConfig } from "./reload.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/config.toml`;
 * let config = parseConfig("", path);
 * await Deno.writeTextFile(path, "[relay]\nlocal_domains = [\"example.com\"]\n");
 * // watchConfig(path, () => config, (next) => config = next, log) runs this on every change of the file:
 * const result = await reloadConfig(path, () => config, (next) => config = next, getLogger(["empath"]));
 * assert.deepEqual(result, { ok: true, changed: ["relay"], needsRestart: [] });
 * assert.deepEqual(config.relay.local_domains, ["example.com"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { type Config, loadConfig } from "../config/mod.ts";
import { setLogLevel } from "../observability/log.ts";

/** Top-level keys whose change only takes effect after a restart. */
const RESTART_KEYS = ["listeners", "data_dir", "queue", "tls", "auth", "http", "spool", "modules"] as const;

/** The outcome of one reload. */
export interface ReloadResult {
  ok: boolean;
  error?: string;
  changed: string[];
  needsRestart: string[];
}

/** Re-reads the file and applies what can change at runtime. */
export async function reloadConfig(
  path: string,
  current: () => Config,
  apply: (next: Config) => void,
  log: Logger,
): Promise<ReloadResult> {
  let next: Config;
  try {
    next = (await loadConfig(path)).config;
  } catch (err) {
    const error = (err as Error).message;
    log.error("config reload rejected, keeping the running config: {error}", { error });
    return { ok: false, error, changed: [], needsRestart: [] };
  }
  const before = current();
  const changed = (Object.keys(next) as (keyof Config)[]).filter((k) =>
    JSON.stringify(before[k]) !== JSON.stringify(next[k])
  );
  const needsRestart: string[] = changed.filter((k) => (RESTART_KEYS as readonly string[]).includes(k));
  // Bound at start too: delivery's DNS server, and the smtp-server options set at construction.
  if (JSON.stringify(before.delivery.dns) !== JSON.stringify(next.delivery.dns)) needsRestart.push("delivery.dns");
  for (const key of ["max_message_size", "max_connections", "max_recipients", "banner"] as const) {
    if (before.smtp[key] !== next.smtp[key]) needsRestart.push(`smtp.${key}`);
  }
  if (before.smtp.timeouts.command !== next.smtp.timeouts.command) needsRestart.push("smtp.timeouts.command");
  apply(next);
  if (before.log.level !== next.log.level) await setLogLevel(next.log.level);
  log.info("config reloaded from {path}: changed {changed}; needs a restart: {restart}", {
    path,
    changed: changed.join(", ") || "nothing",
    restart: needsRestart.join(", ") || "nothing",
  });
  return { ok: true, changed, needsRestart };
}

/** Watches the file and reloads on change (debounced). Returns a stop function. */
export function watchConfig(
  path: string,
  current: () => Config,
  apply: (next: Config) => void,
  log: Logger,
  onResult?: (result: ReloadResult) => void,
): () => void {
  let watcher: Deno.FsWatcher;
  try {
    watcher = Deno.watchFs(path, { recursive: false });
  } catch (err) {
    log.warning("cannot watch {path} for changes: {error}", { path, error: (err as Error).message });
    return () => {};
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    try {
      for await (const event of watcher) {
        if (event.kind === "access") continue;
        clearTimeout(timer);
        timer = setTimeout(() => void reloadConfig(path, current, apply, log).then(onResult), 200);
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
