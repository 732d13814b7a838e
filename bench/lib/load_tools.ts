/**
 * Postfix's load tools: `smtp-sink` counting messages and `smtp-source` sending them.
 * @module
 */
import { freePort } from "../../testing/net.ts";
import { startProcess } from "../../testing/process.ts";
import { BenchSetupError, requireLoadTools, track } from "./common.ts";

/** Postfix's `smtp-sink` counting messages (its `-c` counter), optionally refusing mail. */
export interface Sink {
  port: number;
  /** Messages received ("." seen) so far. */
  readonly count: number;
  /**
   * Resolves once `n` messages arrived. Rejects after `timeoutMs` in all, or when the
   * count did not move for `stallMs` (default: never).
   */
  waitFor(n: number, timeoutMs: number, stallMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts `smtp-sink` on 127.0.0.1:port. With `-c` it prints running counters
 * ("sess=3 quit=2 mesg=41", separated by CR) to stdout; nothing is written to disk.
 * Runs as `postfix` when we are root. `extra` are more smtp-sink options (e.g. `-R`).
 */
export async function startSink(port = freePort(), extra: string[] = []): Promise<Sink> {
  requireLoadTools();
  const root = Deno.uid() === 0;
  let count = 0;
  let movedAt = performance.now();
  let buf = "";
  const waiters = new Set<{ n: number; resolve: (n: number) => void }>();
  const onStdout = (chunk: string) => {
    buf += chunk;
    const cut = buf.lastIndexOf("\r");
    if (cut < 0) return;
    const m = /mesg=(\d+)\s*$/.exec(buf.slice(0, cut));
    buf = buf.slice(cut + 1);
    if (m && Number(m[1]) !== count) {
      count = Number(m[1]);
      movedAt = performance.now();
    }
    for (const w of [...waiters]) {
      if (count >= w.n) {
        waiters.delete(w);
        w.resolve(count);
      }
    }
  };
  let untrack = () => {};
  const proc = await startProcess({
    cmd: "smtp-sink",
    args: [...(root ? ["-u", "postfix"] : []), "-c", ...extra, `127.0.0.1:${port}`, "1024"],
    name: `smtp-sink on port ${port}`,
    lines: false,
    onStdout,
    ready: { port },
    readyTimeoutMs: 5000,
    graceMs: 5000,
  }).catch((err) => {
    throw new BenchSetupError("start_failed", `smtp-sink did not start on port ${port}: ${(err as Error).message}`);
  });
  const stop = async () => {
    untrack();
    await proc.stop();
  };
  untrack = track(`smtp-sink on port ${port}`, stop);
  // The probe connection above counts as a session, not a message.
  return {
    port,
    get count() {
      return count;
    },
    waitFor(n, timeoutMs, stallMs = Infinity) {
      if (count >= n) return Promise.resolve(count);
      return new Promise((resolve, reject) => {
        const started = performance.now();
        const w = {
          n,
          resolve: (c: number) => {
            clearInterval(timer);
            resolve(c);
          },
        };
        waiters.add(w);
        const timer = setInterval(() => {
          const now = performance.now();
          const why = proc.exited
            ? "smtp-sink exited"
            : now - started > timeoutMs
            ? `in ${(timeoutMs / 1000).toFixed(0)} s`
            : now - Math.max(movedAt, started) > stallMs
            ? `(no progress for ${(stallMs / 1000).toFixed(0)} s)`
            : "";
          if (!why) return;
          clearInterval(timer);
          waiters.delete(w);
          reject(new BenchSetupError("stalled", `only ${count}/${n} messages reached the sink ${why}`));
        }, 250);
      });
    },
    stop,
  };
}

/** Options for {@link smtpSource}. */
export interface SourceOptions {
  port: number;
  messages: number;
  sessions: number;
  /** Payload octets (smtp-source adds a few header lines). */
  size: number;
  /** Recipients per message (smtp-source prefixes a number to the `to` local part). */
  recipients?: number;
  to?: string;
  from?: string;
}

/** A running `smtp-source`. */
export interface SourceRun {
  /** Resolves when it exited: when (performance.now()), exit code, stderr. */
  done: Promise<{ at: number; code: number; stderr: string }>;
  /** Kills it (SIGKILL) and waits. */
  kill(): Promise<void>;
}

/** Starts `smtp-source` with `-d` (one connection per session, reused for every message). */
export function spawnSmtpSource(o: SourceOptions): SourceRun {
  requireLoadTools();
  const child = new Deno.Command("smtp-source", {
    args: [
      "-d",
      "-s",
      String(o.sessions),
      "-m",
      String(o.messages),
      "-l",
      String(o.size),
      "-r",
      String(o.recipients ?? 1),
      "-f",
      o.from ?? "bench@example.com",
      "-t",
      o.to ?? "sink@example.net",
      `127.0.0.1:${o.port}`,
    ],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const kill = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await done.catch(() => {});
  };
  const untrack = track("smtp-source", kill);
  const done = child.output().then((out) => {
    untrack();
    return { at: performance.now(), code: out.code, stderr: new TextDecoder().decode(out.stderr).trim() };
  });
  return { done, kill };
}

/** Runs `smtp-source` to completion; returns when it finished (performance.now()) and its exit code. */
export function smtpSource(o: SourceOptions): Promise<{ at: number; code: number; stderr: string }> {
  return spawnSmtpSource(o).done;
}
