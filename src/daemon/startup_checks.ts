/**
 * Start-up checks that need more than the schema: rules across fields and files the config
 * names. A failure is a {@link ConfigError} naming the file, the key, the value and what was
 * expected, so `empath` exits 78 before it touches any data.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfig } from "../config/mod.ts";
 * import { checkRoles } from "./startup_checks.ts"; // @ts-ignore deno#26900
 *
 * checkRoles(parseConfig("", "config.toml"), "config.toml"); // one mx listener: nothing to complain about
 * const submission = parseConfig('[[listeners]]\naddress = "127.0.0.1:587"\nrole = "submission"\n', "config.toml");
 * assert.throws(() => checkRoles(submission, "config.toml"), /needs a certificate/);
 * ```
 * @module
 */
import { type Config, ConfigError, type LoadedConfig } from "../config/mod.ts";
import { loadTlsFiles, loadUsers } from "../smtp/mod.ts";
import { checkRecipientsTable } from "./recipients.ts";

/** Checks cross-field rules zod cannot express (files referenced by roles). */
export function checkRoles(config: Config, file: string) {
  config.listeners.forEach((l, i) => {
    const hasCert = (l.tls_cert ?? config.tls.cert) && (l.tls_key ?? config.tls.key);
    if (l.role !== "mx" && !hasCert) {
      throw new ConfigError(
        `invalid configuration in ${file}:\n  listeners[${i}].role = "${l.role}": needs a certificate: set tls.cert and tls.key (or listeners[${i}].tls_cert/tls_key)`,
        file,
      );
    }
    if (l.role !== "mx" && !config.auth.users_file) {
      throw new ConfigError(
        `invalid configuration in ${file}:\n  auth.users_file = missing: listeners[${i}] has role "${l.role}", which requires AUTH; set auth.users_file (see README "Adding a user")`,
        file,
      );
    }
  });
}

/** Reads `control.token_file` (trimmed); undefined without one. */
export async function readControlToken(config: Config, configPath: string): Promise<string | undefined> {
  const controlToken: string | undefined = config.control.token_file
    ? await Deno.readTextFile(config.control.token_file).then((t) => t.trim(), (err) => {
      throw new ConfigError(
        `invalid configuration in ${configPath}:\n  control.token_file = "${config.control.token_file}": cannot be read (${
          (err as Error).message
        })`,
        configPath,
      );
    })
    : undefined;
  if (controlToken === "") {
    throw new ConfigError(
      `invalid configuration in ${configPath}:\n  control.token_file = "${config.control.token_file}": the file is empty; expected a secret`,
      configPath,
    );
  }

  return controlToken;
}

/** Loads `recipients.table` once, so a broken file stops the start with its line and reason. */
export async function checkRecipientsFile(config: Config, configPath: string): Promise<void> {
  await checkRecipientsTable(config).catch((err) => {
    throw new ConfigError(
      `invalid configuration in ${configPath}:\n  recipients.table = "${config.recipients.table}": ${
        (err as Error).message
      }`,
      configPath,
    );
  });
}

/**
 * Every start-up check that needs no data directory or socket, for `empath --check-config`: the same
 * rules start-up applies, so a config that passes here does not fail at start for these reasons
 * (roles and their certificates and users file, the control token, the recipients table, TLS files).
 */
export async function checkStartup(loaded: LoadedConfig): Promise<void> {
  const { config, path } = loaded;
  checkRoles(config, path);
  await readControlToken(config, path);
  if (config.auth.users_file) await loadUsers(config.auth.users_file);
  await checkRecipientsFile(config, path);
  const pairs = new Set<string>();
  for (const l of config.listeners) {
    const cert = l.tls_cert ?? config.tls.cert;
    const key = l.tls_key ?? config.tls.key;
    if (cert && key && !pairs.has(`${cert}\0${key}`)) {
      pairs.add(`${cert}\0${key}`);
      await loadTlsFiles(cert, key);
    }
  }
}

/**
 * Warns (as Postfix does) when the name Empath gives itself is not fully qualified: it is
 * used in the greeting, HELO, `Received:`, `MAILER-DAEMON@…` and DSNs' `Reporting-MTA`.
 */
export function warnShortHostname(
  hostname: string,
  configured: boolean,
  log: { warning(message: string, props: Record<string, unknown>): void },
): boolean {
  if (hostname.includes(".") && !hostname.endsWith(".")) return false;
  log.warning(
    "the host name {hostname} ({source}) is not fully qualified; HELO, Received:, MAILER-DAEMON@{hostname} and " +
      'Reporting-MTA use it. Set smtp.hostname = "mx.example.com" in the config',
    { hostname, source: configured ? "smtp.hostname" : "from the system, smtp.hostname is not set" },
  );
  return true;
}

/** A listener's address is taken by another process. */
export class AddressInUseError extends Error {
  readonly code = "ADDRESS_IN_USE";
  constructor(readonly key: string, readonly address: string, options?: ErrorOptions) {
    super(`${key} = "${address}": the address is already in use (another process listens there)`, options);
    this.name = "AddressInUseError";
  }
}

/** Names the config key and address when binding failed because the address is in use; other errors pass. */
export function explainListenError(err: unknown, key: string, address: { host: string; port: number }): unknown {
  // Deno.listen throws AddrInUse; node:net (smtp-server) an error with code EADDRINUSE.
  const inUse = err instanceof Deno.errors.AddrInUse || (err as { code?: unknown })?.code === "EADDRINUSE";
  if (!inUse) return err;
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return new AddressInUseError(key, `${host}:${address.port}`, { cause: err });
}
