/**
 * Runs the real `empath` daemon (main.ts) as a subprocess with a temp data dir and
 * a config written from TOML text. Listeners use port 0; the bound ports are read
 * from the daemon's JSON log lines.
 */
import { join } from "node:path";

const REPO = new URL("../../", import.meta.url).pathname;

/**
 * The `--allow-*` (and `--v8-flags`) flags of a deno.json task, so tests run a program exactly
 * as operators do.
 */
export function taskPermissions(task: string): string[] {
  const tasks = JSON.parse(Deno.readTextFileSync(join(REPO, "deno.json"))).tasks as Record<string, string>;
  return tasks[task].split(/\s+/).filter((a) => a.startsWith("--allow-") || a.startsWith("--v8-flags="));
}

/**
 * The permissions of `deno task start`: a permission the daemon lacks fails a test, not a
 * deployment.
 */
export const START_PERMISSIONS: readonly string[] = taskPermissions("start");

/** A running daemon under test. */
export interface TestDaemon {
  dir: string;
  dataDir: string;
  configPath: string;
  /** Bound port per listener name, and `port` of the first listener. */
  ports: Record<string, number>;
  port: number;
  logs: string[];
  child: Deno.ChildProcess;
  /** Permission flags beyond {@link START_PERMISSIONS} (kept for restarts). */
  permissions: string[];
  /** Resolves with the first log line matching `re`. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM and wait; returns the exit code. */
  stop(): Promise<number>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** Removes the temp dir (after stop/kill). */
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
}

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
    `data_dir = "${dataDir}"\n${listener}${extra}${delivery}${http}\n[log]\nformat = "json"\nlevel = "${log}"\n`;
  await Deno.writeTextFile(configPath, toml);
  const expected = (toml.match(/\[\[listeners\]\]/g) ?? []).length;
  return await spawn(dir, dataDir, configPath, expected, options.env, options.permissions ?? []);
}

/** Starts again on the same dir and config (after stop/kill). */
export function restartDaemon(prev: TestDaemon): Promise<TestDaemon> {
  return Deno.readTextFile(prev.configPath).then((toml) =>
    spawn(
      prev.dir,
      prev.dataDir,
      prev.configPath,
      (toml.match(/\[\[listeners\]\]/g) ?? []).length,
      undefined,
      prev.permissions,
    )
  );
}

async function spawn(
  dir: string,
  dataDir: string,
  configPath: string,
  expected: number,
  env: Record<string, string> | undefined,
  permissions: string[],
): Promise<TestDaemon> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...START_PERMISSIONS, ...permissions, join(REPO, "main.ts"), "--config", configPath],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  const logs: string[] = [];
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        for (const w of [...waiters]) {
          if (w.re.test(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  const waitForLog = (re: RegExp, timeoutMs = 15_000) => {
    const found = logs.find((l) => re.test(l));
    if (found) return Promise.resolve(found);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.findIndex((w) => w.re === re), 1);
        reject(new Error(`timed out waiting for log ${re}; logs:\n${logs.slice(-30).join("\n")}`));
      }, timeoutMs);
      waiters.push({
        re,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  };

  const ports: Record<string, number> = {};
  const started = waitForLog(/started with/, 20_000);
  const failed = status.then(async (s) => {
    await pumps;
    throw new Error(`daemon exited with ${s.code} before starting:\n${logs.join("\n")}`);
  });
  await Promise.race([started, failed]);
  failed.catch(() => {});
  for (const line of logs) {
    if (!line.includes("listening on")) continue;
    const rec = JSON.parse(line);
    const name = rec.properties?.name ?? rec.properties?.role;
    ports[name] = rec.properties.port;
    if (!("__first" in ports)) ports.__first = rec.properties.port;
  }
  if (Object.keys(ports).length - 1 < expected) throw new Error(`not all listeners bound:\n${logs.join("\n")}`);

  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
    }
    const s = await status;
    await pumps;
    return s.code;
  };
  return {
    dir,
    dataDir,
    configPath,
    ports,
    port: ports.__first,
    logs,
    child,
    permissions,
    waitForLog,
    stop,
    async kill() {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }
      await status;
      await pumps;
    },
    async cleanup() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Runs the daemon CLI to completion (for --check-config, --help, bad configs). */
export async function runEmpath(args: string[], cwd = REPO, stdin?: string) {
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
