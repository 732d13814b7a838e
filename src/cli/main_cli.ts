/**
 * The `empath` command line: start the daemon, check a config, hash a password.
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError, configPathFrom, EX_CONFIG, loadConfig } from "../config/mod.ts";
import { checkStartup, startDaemon } from "../daemon/mod.ts";
import { logger, setupLogging } from "../observability/log.ts";
import { hashPassword, TlsConfigError, UsersFileError } from "../smtp/mod.ts";
import { startHeapTrim } from "../util/heap_trim.ts";
import { VERSION } from "../version.ts";

/** EX_USAGE from sysexits.h. */
export const EX_USAGE = 64;

const HELP = `empath ${VERSION} — a mail transfer agent

Usage:
  empath [--config FILE]          run the daemon (default config: $EMPATH_CONFIG or ./config.toml)
  empath --check-config [FILE]    validate a config file and exit (0 valid, 78 invalid)
  empath --hash-password          read a password on stdin, print a users-file hash
  empath --version | --help

Signals: SIGTERM/SIGINT stop gracefully (sessions in DATA finish, nothing queued is lost).
`;

/** Runs the CLI; resolves to an exit code (the daemon keeps running until a signal). */
export async function runEmpath(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        config: { type: "string", short: "c" },
        "check-config": { type: "boolean" },
        "hash-password": { type: "boolean" },
        version: { type: "boolean", short: "V" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    console.error(`empath: ${(err as Error).message}\nTry 'empath --help'.`);
    return EX_USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.version) {
    console.log(`empath ${VERSION}`);
    return 0;
  }
  if (values["hash-password"]) {
    const input = (await new Response(Deno.stdin.readable).text()).replace(/\r?\n$/, "");
    if (!input) {
      console.error("empath: no password on stdin");
      return EX_USAGE;
    }
    console.log(await hashPassword(input));
    return 0;
  }
  if (positionals.length > (values["check-config"] ? 1 : 0)) {
    console.error(`empath: unexpected argument "${positionals.at(-1)}"\nTry 'empath --help'.`);
    return EX_USAGE;
  }
  const path = configPathFrom(values["check-config"] ? positionals[0] ?? values.config : values.config);
  let loaded;
  try {
    loaded = await loadConfig(path);
  } catch (err) {
    console.error(`empath: ${(err as Error).message}`);
    return err instanceof ConfigError ? EX_CONFIG : 1;
  }
  if (values["check-config"]) {
    try {
      await checkStartup(loaded); // the same file checks start-up makes
    } catch (err) {
      const configish = err instanceof ConfigError || err instanceof TlsConfigError || err instanceof UsersFileError;
      console.error(`empath: ${(err as Error).message}`);
      return configish ? EX_CONFIG : 1;
    }
    console.log(`${loaded.path}: configuration is valid`);
    return 0;
  }
  await setupLogging(loaded.config.log);
  const log = logger("daemon");
  // Signals are handled from the start: a SIGTERM during start-up stops the daemon once it is up.
  let signalled: string | undefined;
  let onStop: (() => void) | undefined;
  const handler = (signal: string) => () => {
    if (signalled) return;
    signalled = signal;
    log.info("received {signal}", { signal });
    onStop?.();
  };
  const term = handler("SIGTERM");
  const int = handler("SIGINT");
  Deno.addSignalListener("SIGTERM", term);
  Deno.addSignalListener("SIGINT", int);
  let daemon;
  try {
    daemon = await startDaemon(loaded);
  } catch (err) {
    const configish = err instanceof ConfigError || err instanceof TlsConfigError || err instanceof UsersFileError;
    console.error(`empath: ${(err as Error).message}`);
    return configish ? EX_CONFIG : 1;
  }
  log.info("empath {version} started with {config}", { version: VERSION, config: loaded.path });
  // Memory back soon after a burst (issue #18): work = messages queued, or deliveries in flight.
  let work = 0;
  const offQueued = daemon.submitter.onQueued(() => work++);
  const heapTrim = startHeapTrim({ activity: () => daemon.delivery.inFlight().length > 0 ? ++work : work });
  await new Promise<void>((resolve) => {
    onStop = () => daemon.stop().then(resolve, resolve);
    if (signalled) onStop();
  });
  heapTrim.stop();
  offQueued();
  Deno.removeSignalListener("SIGTERM", term);
  Deno.removeSignalListener("SIGINT", int);
  return 0;
}
