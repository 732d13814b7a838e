/**
 * `empath`, the mail transfer agent daemon. See README.md, or `empath --help`.
 * @module
 */
import { runEmpath } from "./src/cli/main_cli.ts";

if (import.meta.main) {
  Deno.exit(await runEmpath(Deno.args));
}
