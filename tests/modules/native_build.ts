/** Builds a C module with the system `cc` for tests; null (with the reason) when there is no compiler. */
import { join } from "node:path";

const REPO = new URL("../../", import.meta.url).pathname;

/** Path of the `cc` binary, or undefined. */
export function findCc(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const path = join(dir, "cc");
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not here */ }
  }
  return undefined;
}

/** Compiles `source` (relative to the repo) into `outDir`; returns the library path. */
export async function buildNative(source: string, outDir: string, name: string): Promise<string> {
  const cc = findCc();
  if (!cc) throw new Error("no cc on PATH");
  const out = join(outDir, `lib${name}.so`);
  const r = await new Deno.Command(cc, {
    args: ["-shared", "-fPIC", "-O2", "-Wall", "-I", join(REPO, "native"), "-o", out, join(REPO, source)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`cc failed: ${new TextDecoder().decode(r.stderr)}`);
  return out;
}
