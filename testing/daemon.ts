/**
 * Runs the real `empath` daemon (main.ts) as a subprocess with a temp data dir and
 * a config written from TOML text. Listeners use port 0; the bound ports are read
 * from the daemon's JSON log lines. `await using d = await startDaemon(…)` stops it
 * and removes its temp dir at the end of the block.
 * @module
 */
import { join } from "node:path";
import { type ManagedProcess, startProcess } from "./process.ts";
import { REPO, START_PERMISSIONS } from "./repo.ts";

export { START_PERMISSIONS, taskPermissions } from "./repo.ts";

/** A running daemon under test. */
export interface TestDaemon extends AsyncDisposable {
  dir: string;
  dataDir: string;
  configPath: string;
  /** Bound port per listener name (and role). */
  ports: Record<string, number>;
  /** The port of the first listener. */
  port: number;
  /** The bound port of the listener (or `http`) called `name`; throws when there is none. */
  portOf(name: string): number;
  /** Every stdout/stderr line so far (callers may trim it); with `output: "discard"`, those until ready. */
  logs: string[];
  /** The last lines and, with `output: "discard"`, the last raw output (for error reports). */
  outputTail(): string;
  child: Deno.ChildProcess;
  /** Permission flags beyond {@link START_PERMISSIONS} (kept for restarts). */
  permissions: string[];
  /** Resolves with the first log line matching `re`. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM and wait (SIGKILL after a minute); returns the exit code. Again after exit: the same code, no signal. */
  stop(): Promise<number>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** Removes the temp dir (after stop/kill); a no-op once it is gone. */
  cleanup(): Promise<void>;
}

/** Options for {@link startDaemon}. */
export interface StartOptions {
  /** Extra TOML appended after the generated header (listeners, sections). */
  toml?: string;
  /** Reuse an existing dir (restart scenarios). */
  dir?: string;
  /** Default listener block is added unless false. */
  defaultListener?: boolean;
  env?: Record<string, string>;
  /** "info" or "debug" (default); the harness needs info lines to find ports. */
  logLevel?: "info" | "debug";
  /** Permission flags beyond {@link START_PERMISSIONS}, e.g. `--allow-ffi` for native modules. */
  permissions?: string[];
  /** Once started: keep collecting log lines ("lines", default) or drain raw bytes ("discard", benchmarks). */
  output?: "lines" | "discard";
  /**
   * Leave recipient validation and the sender-domain check at Empath's own defaults (both on) even when
   * the TOML does not mention them; by default the harness turns both off (see withHardeningDefaults).
   */
  hardeningDefaults?: boolean;
}

const listenerCount = (toml: string) => (toml.match(/\[\[listeners\]\]/g) ?? []).length;

/** Starts the daemon and waits until every listener is bound. */
export async function startDaemon(options: StartOptions = {}): Promise<TestDaemon> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "empath-e2e-" });
  const dataDir = join(dir, "var");
  const configPath = join(dir, "config.toml");
  const listener = options.defaultListener === false
    ? ""
    : `[[listeners]]\nname = "mx"\naddress = "127.0.0.1:0"\nrole = "mx"\n`;
  const extra = options.toml ?? "";
  // The harness reads bound ports from JSON log lines, so [log] is always JSON at info or below.
  const log = options.logLevel ?? "debug";
  // Foundation tests keep messages queued: delivery is off unless the test configures [delivery].
  const delivery = extra.includes("[delivery") ? "" : "\n[delivery]\nenabled = false\n";
  // The HTTP listener gets an ephemeral port too (its port is in ports.http).
  const http = extra.includes("[http") ? "" : `\n[http]\naddress = "127.0.0.1:0"\n`;
  const toml =
    `data_dir = "${dataDir}"\n${listener}${
      options.hardeningDefaults ? extra : withHardeningDefaults(extra)
    }${delivery}${http}\n` +
    `[log]\nformat = "json"\nlevel = "${log}"\n`;
  await Deno.writeTextFile(configPath, toml);
  return await spawn(
    dir,
    dataDir,
    configPath,
    listenerCount(toml),
    options.env,
    options.permissions ?? [],
    options.output,
  );
}

/**
 * Recipient validation and the sender-domain check (issue #13) are on by default in Empath. Suites
 * written for other behaviour send to made-up users at local domains from senders whose domains
 * have no DNS here, so the harness turns both off unless a test sets them itself (the hardening
 * suites do, and check the defaults through `empath --check-config` and real sessions).
 */
function withHardeningDefaults(extra: string): string {
  let toml = extra;
  if (!toml.includes("reject_unknown_sender_domain")) {
    toml = toml.includes("[relay]\n")
      ? toml.replace("[relay]\n", "[relay]\nreject_unknown_sender_domain = false\n")
      : `${toml}\n[relay]\nreject_unknown_sender_domain = false\n`;
  }
  if (!toml.includes("[recipients]")) toml += `\n[recipients]\nunknown = "accept"\n`;
  return toml;
}

/** Starts again on the same dir and config (after stop/kill). */
export async function restartDaemon(prev: TestDaemon): Promise<TestDaemon> {
  const toml = await Deno.readTextFile(prev.configPath);
  return await spawn(prev.dir, prev.dataDir, prev.configPath, listenerCount(toml), undefined, prev.permissions);
}

/** Bound ports from the "listening on" log lines; `undefined` for a listener not bound yet. */
function boundPorts(logs: string[]): { ports: Record<string, number>; first: number | undefined; count: number } {
  const ports: Record<string, number> = {};
  let first: number | undefined;
  let count = 0;
  for (const line of logs) {
    if (!line.includes("listening on")) continue;
    const props = (JSON.parse(line) as { properties?: { name?: string; role?: string; port?: number } }).properties;
    const port = props?.port;
    if (port === undefined) continue;
    ports[props?.name ?? props?.role ?? String(count)] = port;
    first ??= port;
    count++;
  }
  return { ports, first, count };
}

async function spawn(
  dir: string,
  dataDir: string,
  configPath: string,
  expected: number,
  env: Record<string, string> | undefined,
  permissions: string[],
  output: "lines" | "discard" = "lines",
): Promise<TestDaemon> {
  const proc: ManagedProcess = await startProcess({
    cmd: Deno.execPath(),
    name: "daemon",
    args: ["run", ...START_PERMISSIONS, ...permissions, join(REPO, "main.ts"), "--config", configPath],
    cwd: dir,
    env: { NO_COLOR: "1", ...env },
    ready: /started with/,
    readyTimeoutMs: 20_000,
    graceMs: 60_000,
  });
  const logs = proc.lines;
  // Ports come from the lines up to "started with"; only then is the output discarded.
  if (output === "discard") proc.discardOutput();
  const { ports, first, count } = boundPorts(logs);
  if (first === undefined || count < expected) {
    await proc.kill();
    throw new Error(`not all listeners bound:\n${logs.join("\n")}`);
  }
  const stop = async () => (await proc.stop()).code;
  const cleanup = async () => {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    dir,
    dataDir,
    configPath,
    ports,
    port: first,
    portOf(name: string): number {
      const port = ports[name];
      if (port === undefined) throw new Error(`no listener "${name}" (bound: ${Object.keys(ports).join(", ")})`);
      return port;
    },
    logs,
    outputTail: proc.outputTail,
    child: proc.child,
    permissions,
    waitForLog: proc.waitForLine,
    stop,
    async kill() {
      await proc.kill();
    },
    cleanup,
    async [Symbol.asyncDispose]() {
      await proc.stop();
      await cleanup();
    },
  };
}

/** Runs the daemon CLI to completion (for --check-config, --help, bad configs). */
export async function runEmpath(
  args: string[],
  cwd: string = REPO,
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...START_PERMISSIONS, join(REPO, "main.ts"), ...args],
    cwd,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
