/**
 * One way to run a child process for tests and benchmarks (the daemon, Python sinks,
 * dnsmasq, Postfix's smtp-sink …): spawn with args and env, collect its output lines,
 * wait for a ready line or port, stop with SIGTERM then SIGKILL, and
 * `await using proc = await startProcess(…)`. A benchmark can have the output drained as
 * raw bytes once the process is ready (`discardOutput()`): nothing is decoded or split,
 * only the last 64 KiB are kept for error reports.
 * @module
 */
import { waitListening } from "./net.ts";
import { concatBytes } from "../src/util/bytes.ts";

/** Why a process helper failed. */
export class ProcessError extends Error {
  override name = "ProcessError";
  /** `exited`: the process ended before it was ready; `timeout`: it was not ready in time. */
  constructor(readonly code: "exited" | "timeout", message: string) {
    super(message);
  }
}

/** What to run and how to tell that it is ready. */
export interface ProcessOptions {
  cmd: string;
  args?: string[];
  cwd?: string;
  /** Added to the inherited environment. */
  env?: Record<string, string>;
  /** A name for error messages (default: `cmd`). */
  name?: string;
  /** Collect stdout as lines in {@link ManagedProcess.lines} (default true); false only drains it. stderr lines are always kept. */
  lines?: boolean;
  /** Called with every decoded chunk of stdout (e.g. counters separated by CR). */
  onStdout?: (text: string) => void;
  /** Ready when a line matches (needs `lines`), or when something listens on this loopback port. */
  ready?: RegExp | { port: number };
  /** How long to wait for `ready` (default 15 s). */
  readyTimeoutMs?: number;
  /** Default grace of {@link ManagedProcess.stop} before SIGKILL (default 10 s). */
  graceMs?: number;
}

/** A running child process. */
export interface ManagedProcess extends AsyncDisposable {
  child: Deno.ChildProcess;
  pid: number;
  /** stdout and stderr lines in arrival order (callers may trim it); no longer grows after {@link discardOutput}. */
  lines: string[];
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** Resolves when it exited and its output was read. */
  status: Promise<Deno.CommandStatus>;
  /** Resolves with the first line (already seen or coming) matching `re`; rejects on exit or timeout. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, SIGKILL after `graceMs` (default from the options); resolves with the exit status. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
  /** SIGKILL and wait. */
  kill(): Promise<Deno.CommandStatus>;
  /**
   * From the next chunk on, reads stdout and stderr as raw bytes and drops them (no decoding,
   * no lines, no `onStdout`), keeping only the last `keepBytes` (default 64 KiB) for
   * {@link outputTail}. Lines not yet complete are dropped; `waitForLine` finds no new lines.
   */
  discardOutput(keepBytes?: number): void;
  /** The last 30 lines, and after {@link discardOutput} the kept raw bytes (for error reports). */
  outputTail(): string;
}

/** Raw output kept after {@link ManagedProcess.discardOutput} by default. */
export const DISCARD_KEEP_BYTES = 64 * 1024;

function signal(child: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    child.kill(sig);
  } catch { /* already gone */ }
}

/** Spawns the process (stdin closed) and, with `ready`, waits for it; on failure it is killed and this throws. */
export async function startProcess(options: ProcessOptions): Promise<ManagedProcess> {
  const name = options.name ?? options.cmd;
  const child = new Deno.Command(options.cmd, {
    args: options.args ?? [],
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters = new Set<{ re: RegExp; resolve: (line: string) => void }>();
  // After discardOutput: the last bytes of both streams, in a ring (chunks may pin 64 KiB buffers each).
  let discard = false;
  let ring = new Uint8Array(0);
  let ringPos = 0;
  let ringWrapped = false;
  const keepRaw = (chunk: Uint8Array) => {
    const size = ring.length;
    if (size === 0) return;
    const tail = chunk.length > size ? chunk.subarray(chunk.length - size) : chunk;
    const first = Math.min(tail.length, size - ringPos);
    ring.set(tail.subarray(0, first), ringPos);
    ring.set(tail.subarray(first), 0);
    if (ringPos + tail.length >= size) ringWrapped = true;
    ringPos = (ringPos + tail.length) % size;
  };
  const keptRaw = () =>
    ringWrapped ? concatBytes([ring.subarray(ringPos), ring.subarray(0, ringPos)]) : ring.subarray(0, ringPos);
  const pump = async (stream: ReadableStream<Uint8Array>, collect: boolean, onChunk?: (text: string) => void) => {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const bytes of stream) {
        if (discard) {
          keepRaw(bytes);
          continue;
        }
        const chunk = decoder.decode(bytes, { stream: true });
        onChunk?.(chunk);
        if (!collect) continue;
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          lines.push(line);
          for (const w of [...waiters]) {
            if (w.re.test(line)) {
              waiters.delete(w);
              w.resolve(line);
            }
          }
        }
      }
    } catch { /* the pipe broke */ }
    if (discard) return;
    buf += decoder.decode();
    if (collect && buf) lines.push(buf);
  };
  const pumps = Promise.all([pump(child.stdout, options.lines !== false, options.onStdout), pump(child.stderr, true)]);
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await pumps;
    return s;
  });
  const tail = () => {
    const last = lines.slice(-30).join("\n");
    if (!discard) return last;
    const raw = keptRaw();
    return `${last}\n[output discarded since ready; its last ${raw.length} bytes:]\n${new TextDecoder().decode(raw)}`;
  };

  const waitForLine = (re: RegExp, timeoutMs = 15_000) => {
    const found = lines.find((l) => re.test(l));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<string>((resolve, reject) => {
      const w = {
        re,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new ProcessError("timeout", `${name}: no line matching ${re} in ${timeoutMs} ms; output:\n${tail()}`));
      }, timeoutMs);
      waiters.add(w);
      void status.then((s) => {
        if (!waiters.delete(w)) return;
        clearTimeout(timer);
        reject(
          new ProcessError(
            "exited",
            `${name} exited with ${s.code} before ${re}; output:\n${discard ? tail() : lines.join("\n")}`,
          ),
        );
      });
    });
  };

  const kill = async () => {
    if (!exited) signal(child, "SIGKILL");
    return await status;
  };
  const stop = async (graceMs = options.graceMs ?? 10_000) => {
    if (!exited) signal(child, "SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((r) => {
      if (graceMs !== Infinity) timer = setTimeout(r, graceMs);
    });
    const s = await Promise.race([status, killed.then(kill)]);
    clearTimeout(timer);
    return s;
  };

  const proc: ManagedProcess = {
    child,
    pid: child.pid,
    lines,
    get exited() {
      return exited;
    },
    status,
    waitForLine,
    stop,
    kill,
    discardOutput(keepBytes = DISCARD_KEEP_BYTES) {
      if (discard) return;
      ring = new Uint8Array(keepBytes);
      discard = true;
    },
    outputTail: tail,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
  if (options.ready === undefined) return proc;
  const timeoutMs = options.readyTimeoutMs ?? 15_000;
  try {
    if (options.ready instanceof RegExp) await waitForLine(options.ready, timeoutMs);
    else {
      const port = options.ready.port;
      const early = status.then((s) => {
        throw new ProcessError("exited", `${name} exited with ${s.code} before listening; output:\n${tail()}`);
      });
      early.catch(() => {});
      await Promise.race([
        waitListening(port, timeoutMs).catch((err) => {
          throw new ProcessError("timeout", `${name}: ${(err as Error).message}`);
        }),
        early,
      ]);
    }
  } catch (err) {
    await kill();
    throw err;
  }
  return proc;
}
