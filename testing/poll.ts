/**
 * Polling for tests: wait until something the daemon does in the background has happened.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { eventually } from "./poll.ts"; // @ts-ignore deno#26900
 *
 * let n = 0;
 * assert.equal(await eventually(() => ++n >= 3 && n, "three looks", 1_000, 1), 3);
 * ```
 * @module
 */

/**
 * Polls `probe` every `intervalMs` until it returns a value (not undefined/false), or throws after
 * `timeoutMs` naming `what`.
 */
export async function eventually<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  while (true) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
