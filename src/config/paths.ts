/**
 * One rule for relative paths in config.toml: every file or directory path resolves against the
 * directory of the config file, never the working directory. {@link loadConfig} applies it once, so
 * everything after loading sees absolute paths. URLs (`queue.kv_path = "https://…"`), `audit.file = "-"`
 * and LMTP `host:port` targets are left as they are; `unix:` socket targets are resolved.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfig } from "./load.ts";
 * import { resolveConfigPaths } from "./paths.ts";
 *
 * const config = parseConfig('data_dir = "var"\n[tls]\ncert = "certs/mx.pem"\nkey = "/etc/ssl/mx.key"\n', "c.toml");
 * const abs = resolveConfigPaths(config, "/etc/empath");
 * assert.equal(abs.data_dir, "/etc/empath/var");
 * assert.equal(abs.tls.cert, "/etc/empath/certs/mx.pem");
 * assert.equal(abs.tls.key, "/etc/ssl/mx.key"); // absolute paths stay
 * ```
 * @module
 */
import { resolve } from "node:path";
import type { Config } from "./schema.ts";

/** A path made absolute against `base`; undefined stays undefined. */
function abs<T extends string | undefined>(base: string, path: T): T {
  return (path === undefined ? path : resolve(base, path)) as T;
}

/** `unix:relative/sock` → `unix:/base/relative/sock`; `host:port` targets are untouched. */
function unixTarget<T extends string | undefined>(base: string, target: T, prefix = ""): T {
  if (target === undefined || !target.startsWith(`${prefix}unix:`)) return target;
  const head = `${prefix}unix:`;
  return `${head}${resolve(base, target.slice(head.length))}` as T;
}

/** A Deno KV location: a URL (remote KV) or ":memory:" stays, a file path is resolved. */
function kvPath(base: string, path: string | undefined): string | undefined {
  if (path === undefined || path === ":memory:" || /^[a-z][a-z0-9+.-]*:\/\//i.test(path)) return path;
  return resolve(base, path);
}

/**
 * Returns a copy of `config` whose relative paths are resolved against `baseDir` (the config file's
 * directory). Absolute paths, URLs and already-resolved configs come back unchanged.
 */
export function resolveConfigPaths(config: Config, baseDir: string): Config {
  const b = resolve(baseDir);
  const d = config.delivery;
  return {
    ...config,
    data_dir: abs(b, config.data_dir),
    listeners: config.listeners.map((l) => ({ ...l, tls_cert: abs(b, l.tls_cert), tls_key: abs(b, l.tls_key) })),
    tls: { ...config.tls, cert: abs(b, config.tls.cert), key: abs(b, config.tls.key) },
    recipients: {
      ...config.recipients,
      table: abs(b, config.recipients.table),
      verify: unixTarget(b, config.recipients.verify, "lmtp:"),
    },
    auth: {
      ...config.auth,
      users_file: abs(b, config.auth.users_file),
      arc: { ...config.auth.arc, key_file: abs(b, config.auth.arc.key_file) },
    },
    dkim: { ...config.dkim, keys: config.dkim.keys.map((k) => ({ ...k, key_file: abs(b, k.key_file) })) },
    queue: { ...config.queue, kv_path: kvPath(b, config.queue.kv_path) },
    delivery: {
      ...d,
      tls_ca_file: abs(b, d.tls_ca_file),
      mta_sts: { ...d.mta_sts, ca_file: abs(b, d.mta_sts.ca_file) },
      tls_rpt: { ...d.tls_rpt, ca_file: abs(b, d.tls_rpt.ca_file) },
      local_transport: unixTarget(b, d.local_transport),
      domains: Object.fromEntries(
        Object.entries(d.domains).map(([name, p]) => [name, {
          ...p,
          lmtp: unixTarget(b, p.lmtp),
          client_cert: abs(b, p.client_cert),
          client_key: abs(b, p.client_key),
          ca_file: abs(b, p.ca_file),
        }]),
      ),
    },
    audit: { ...config.audit, file: config.audit.file === "-" ? "-" : abs(b, config.audit.file) },
    control: {
      ...config.control,
      socket: abs(b, config.control.socket),
      token_file: abs(b, config.control.token_file),
    },
    web: { ...config.web, token_file: abs(b, config.web.token_file), users_file: abs(b, config.web.users_file) },
    modules: config.modules.map((m) => ({ ...m, path: abs(b, m.path) })),
  };
}
