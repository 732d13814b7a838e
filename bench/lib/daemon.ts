/**
 * A daemon started for a benchmark (info-level start so the harness finds its ports,
 * then a quieter level over the control socket), timed control requests and timed runs
 * of the real `empathctl`.
 * @module
 */
import { join } from "node:path";
import { ControlClient } from "../../src/control/client.ts";
import { restartDaemon, startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { CTL_PERMISSIONS, REPO } from "../../testing/repo.ts";
import { stopAllOnSignal, track } from "./common.ts";

/** A daemon for a benchmark, with its control socket. */
export interface BenchDaemon {
  d: TestDaemon;
  pid: number;
  socket: string;
  /** Sends one control request on a fresh connection; returns the result and the round-trip time. */
  request<T = Record<string, unknown>>(
    command: string,
    args?: Record<string, unknown>,
  ): Promise<{ result: T; ms: number }>;
  /** Stops and removes its temp dir. */
  stop(): Promise<void>;
  /** Drops the SIGINT cleanup (the daemon is being stopped another way). */
  forget(): void;
}

/**
 * Starts the daemon with `toml` (appended to the harness's header) and switches its log
 * level to `logLevel` (the harness needs `info` at start to learn the ports). Once it is
 * up, its output is drained without being decoded or kept (`d.outputTail()` has the
 * end); after `restartBenchDaemon` lines are kept again, so long runs use `warning`. `env` is added to
 * the daemon's environment (e.g. `DENO_V8_FLAGS` to look into its memory).
 */
export async function startBenchDaemon(
  toml: string,
  logLevel = "warning",
  env?: Record<string, string>,
): Promise<BenchDaemon> {
  return await wrap(await startDaemon({ toml, logLevel: "info", env, output: "discard" }), logLevel);
}

/** Stops the daemon (SIGTERM) and starts it again on the same data dir and config. */
export async function restartBenchDaemon(bd: BenchDaemon, logLevel = "warning"): Promise<BenchDaemon> {
  bd.forget();
  await bd.d.stop();
  return await wrap(await restartDaemon(bd.d), logLevel);
}

async function wrap(d: TestDaemon, logLevel: string): Promise<BenchDaemon> {
  const socket = join(d.dataDir, "control.sock");
  const request = async <T>(command: string, args: Record<string, unknown> = {}) => {
    const t0 = performance.now();
    const client = await ControlClient.connect(socket, { timeoutMs: 900_000 });
    try {
      const { result } = await client.request<T>(command, args);
      return { result, ms: performance.now() - t0 };
    } finally {
      client.close();
    }
  };
  stopAllOnSignal();
  const forget = track(`empath (pid ${d.child.pid}, ${d.dir})`, async () => {
    await d.kill();
    await d.cleanup();
  });
  if (logLevel !== "info") await request("system.log-level", { level: logLevel });
  return {
    d,
    pid: d.child.pid,
    socket,
    request,
    forget,
    async stop() {
      forget();
      await d.stop();
      await d.cleanup();
    },
  };
}

/** One run of the real `empathctl`: wall time from spawn to exit, exit code and output. */
export interface CliRun {
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run <ctl permissions> ctl.ts --socket S …args` and times it (process start included). */
export async function timeCli(socket: string, args: string[]): Promise<CliRun> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...CTL_PERMISSIONS, join(REPO, "ctl.ts"), "--socket", socket, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { ms: performance.now() - t0, code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
