/**
 * A guard for one known fault of the PostgreSQL client (npm:postgres 3.4.9) under Deno: when
 * the server goes away, a write the client scheduled with `setImmediate` can still run after the
 * connection closed, and `socket.write` on the nulled socket (src/connection.js `nextWrite`)
 * throws a TypeError outside any promise. Uncaught, that would end the daemon; the connection
 * is already gone and its queries have already failed with CONNECTION_CLOSED (so intake answers
 * 451 and delivery pauses), so the error carries nothing to act on. Only that exact error, from
 * that file, is stopped and logged; every other uncaught error still ends the process.
 *
 * @example
 * ```ts
 * import { isPostgresClientWriteBug } from "./client_guard.ts"; // @ts-ignore deno#26900
 * const err = new TypeError("Cannot read properties of null (reading 'write')");
 * err.stack = "TypeError: …\n    at Immediate.nextWrite (file:///x/node_modules/postgres/src/connection.js:255:22)";
 * console.log(isPostgresClientWriteBug(err)); // true
 * console.log(isPostgresClientWriteBug(new TypeError("other"))); // false
 * ```
 * @module
 */

/** True for the client's write-after-close TypeError (see the module doc). */
export function isPostgresClientWriteBug(error: unknown): boolean {
  return error instanceof TypeError && /\(reading 'write'\)/.test(error.message) &&
    /postgres[\\/]src[\\/]connection\.js/.test(error.stack ?? "");
}

let installed = false;

/** Installs the guard once per process; `onCaught` is told of each error it stops. */
export function guardPostgresClient(onCaught: (error: Error) => void): void {
  if (installed) return;
  installed = true;
  globalThis.addEventListener("error", (event) => {
    if (!isPostgresClientWriteBug(event.error)) return;
    event.preventDefault();
    onCaught(event.error as Error);
  });
}
