/**
 * `empathctl`, the operator's CLI over the daemon's control socket.
 * @module
 */
import { runCtl } from "./src/cli/ctl_cli.ts";

if (import.meta.main) {
  Deno.exit(await runCtl(Deno.args));
}
