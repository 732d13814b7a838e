/**
 * Shared pieces of the benchmarks: setup errors, a registry of everything a benchmark
 * started so that an error or Ctrl-C stops it, preflight checks, and numbers and text
 * (percentiles, message text, tables, results files).
 * @module
 */
import { dirname } from "node:path";

/** A benchmark cannot run here (a tool is missing, not root, a peer did not start). */
export class BenchSetupError extends Error {
  override name = "BenchSetupError";
  constructor(readonly code: "missing_tool" | "not_root" | "start_failed" | "stalled", message: string) {
    super(message);
  }
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Cleanup: everything a benchmark starts registers its stop function here.

const running = new Map<number, { what: string; stop: () => Promise<void> }>();
let nextId = 0;
let signalsInstalled = false;

/**
 * Registers `stop` to run if the benchmark is interrupted (SIGINT/SIGTERM) before the
 * resource is stopped the normal way. Returns the function that unregisters it.
 */
export function track(what: string, stop: () => Promise<void>): () => void {
  const id = nextId++;
  running.set(id, { what, stop });
  return () => running.delete(id);
}

/** Stops every tracked resource, newest first (used on signals; errors are reported, not thrown). */
export async function stopAll(): Promise<void> {
  for (const [id, r] of [...running].reverse()) {
    running.delete(id);
    try {
      await r.stop();
    } catch (err) {
      console.error(`cleanup: stopping ${r.what} failed: ${(err as Error).message}`);
    }
  }
}

/** On SIGINT/SIGTERM: stop whatever is still running, then exit 130/143. Call once per script. */
export function stopAllOnSignal(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.addSignalListener(sig, async () => {
      console.error(`\n${sig}: stopping ${running.size} started process(es) and removing temp dirs`);
      await stopAll();
      Deno.exit(code);
    });
  }
}

/** Waits for `p` at most `ms`; afterwards resolves with `undefined`. */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms))]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Preflight

/** Whether `cmd` is an executable on PATH (or an absolute path). */
export function onPath(cmd: string): boolean {
  const dirs = cmd.includes("/") ? [""] : (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  for (const dir of dirs) {
    try {
      const info = Deno.statSync(dir ? `${dir}/${cmd}` : cmd);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return true;
    } catch { /* not here */ }
  }
  return false;
}

/** Throws a {@link BenchSetupError} naming the package when `smtp-source` or `smtp-sink` is missing. */
export function requireLoadTools(): void {
  for (const tool of ["smtp-source", "smtp-sink"]) {
    if (!onPath(tool)) {
      throw new BenchSetupError(
        "missing_tool",
        `${tool} not found on PATH (nor in /usr/sbin): the benchmarks drive the MTAs with Postfix's load tools; ` +
          `install Debian's postfix package (apt-get install postfix, "No configuration"), as .ci/run does`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Numbers and text

/** The `p`th percentile of an ascending array (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

/** A message of exactly `size` octets (headers included), lines of 80 octets. */
export function messageText(size: number, subject = "bench"): string {
  const head = `Subject: ${subject}\r\nFrom: <bench@example.com>\r\n\r\n`;
  const line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01234\r\n";
  const room = Math.max(2, size - head.length);
  return head + line.repeat(Math.ceil(room / line.length)).slice(0, room - 2) + "\r\n";
}

/** Kilobytes as whole megabytes. */
export const mb = (kb: number): string => (kb / 1024).toFixed(0);

/** A fixed-width text table; the first column is left-aligned, the others right-aligned. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

/** Appends a JSON line to `path` (results files for the docs); no-op without a path. */
export async function appendJson(path: string | undefined, value: unknown): Promise<void> {
  if (!path) return;
  await Deno.mkdir(dirname(path), { recursive: true }).catch(() => {});
  await Deno.writeTextFile(path, JSON.stringify(value) + "\n", { append: true });
}

/** Median of a list of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Formats a duration in ms for a results line (ms below 10 s, else s). */
export const fmtMs = (ms: number): string =>
  ms < 10_000 ? `${ms.toFixed(ms < 100 ? 1 : 0)} ms` : `${(ms / 1000).toFixed(1)} s`;

/** Polls `check` every `intervalMs` until it returns true; throws after `timeoutMs`. */
export async function until(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
  intervalMs = 200,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** {@link messageText} as bytes. */
export function messageBytes(size: number, subject = "bench"): Uint8Array {
  return new TextEncoder().encode(messageText(size, subject));
}
