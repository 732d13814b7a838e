/**
 * The `empathctl` command line. Exit codes: 0 success, 1 the daemon said no,
 * 2 usage error, 3 daemon unreachable.
 * @module
 */
import { VERSION } from "../version.ts";

const HELP = `empathctl ${VERSION} — operate a running Empath over its control socket

Usage:
  empathctl <group> <command> [options]
  empathctl --version | --help

Groups (commands arrive with the control-plane issue):
  system    ping, status, reload-config, log-level
  queue     list, view, retry, delete, bounce, freeze, unfreeze, suspend, summary, stats
  dns       list-cache, clear-cache, refresh, overrides
  smtp      connections

Options:
  --socket PATH   control socket (default: $EMPATH_SOCKET or ./var/control.sock)
  --json          machine-readable output

Exit codes: 0 success, 1 command failed, 2 usage error, 3 daemon unreachable.
`;

/** Runs empathctl; resolves to the exit code. */
export function runCtl(args: string[]): Promise<number> {
  if (args.length === 0 || args.includes("--help") || args.includes("-h")) {
    console.log(HELP);
    return Promise.resolve(args.length === 0 ? 2 : 0);
  }
  if (args.includes("--version") || args.includes("-V")) {
    console.log(`empathctl ${VERSION}`);
    return Promise.resolve(0);
  }
  console.error(`empathctl: unknown command "${args.join(" ")}"\nTry 'empathctl --help'.`);
  return Promise.resolve(2);
}
