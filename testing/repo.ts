/**
 * Where the repository is, and the permission flags of its deno.json tasks, so tests
 * and benchmarks run `main.ts` and `ctl.ts` exactly as operators do.
 * @module
 */
import { join } from "node:path";

/** The repository root (with a trailing slash). */
export const REPO: string = new URL("../", import.meta.url).pathname;

/** The `--allow-*` (and `--v8-flags`) flags of a deno.json task. */
export function taskPermissions(task: string): string[] {
  const tasks = JSON.parse(Deno.readTextFileSync(join(REPO, "deno.json"))).tasks as Record<string, string>;
  const line = tasks[task];
  if (line === undefined) throw new Error(`deno.json has no task "${task}"`);
  return line.split(/\s+/).filter((a) => a.startsWith("--allow-") || a.startsWith("--v8-flags="));
}

/** The permissions of `deno task start`: a permission the daemon lacks fails a test, not a deployment. */
export const START_PERMISSIONS: readonly string[] = taskPermissions("start");

/** The permissions of `deno task ctl`. */
export const CTL_PERMISSIONS: readonly string[] = taskPermissions("ctl");
