/**
 * The audit log: one JSON line per delivery outcome and per state-changing
 * control command, to a file (rotated daily: `audit.log` becomes
 * `audit.log.YYYY-MM-DD` at the first write of a new UTC day, and rotated files
 * older than `retain_days` are removed) or to stdout.
 *
 * Writes never block the caller: `write()` only appends to an in-memory buffer
 * (bounded; lines beyond it are dropped and counted), and a background loop
 * writes the buffer out: it starts at the end of the event-loop turn (`setImmediate`),
 * so the lines of one turn go out in one write rather than one write each. A
 * failing write (ENOSPC, EROFS, EIO…) drops that batch, counts it, logs a warning
 * at most once a minute, and reopens the file on the next batch, so the daemon
 * keeps running and the log resumes when space returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createAuditLog } from "./audit.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const audit = createAuditLog({ target: `${dir}/audit.log`, retainDays: 30 });
 * audit.write({ type: "control", command: "queue.delete", result: "ok" });
 * await audit.close();
 * assert.match(await Deno.readTextFile(`${dir}/audit.log`), /"command":"queue.delete"/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { setImmediate } from "node:timers";
import { basename, dirname, join } from "node:path";
import type { Logger } from "@logtape/logtape";

/** Where the audit log goes. */
export interface AuditOptions {
  /** A file path, "-" for stdout, or "" for nowhere. */
  target: string;
  /** Rotated files kept (days); 0 keeps them all. */
  retainDays?: number;
  /** Lines buffered while the writer is slow or failing; beyond this, lines are dropped. */
  maxBufferedLines?: number;
  log?: Logger;
  /** Called for every line that could not be written (for the metric). */
  onDrop?(lines: number, reason: string): void;
  /** The clock (tests). */
  now?: () => number;
}

/** The audit log as the daemon uses it. */
export interface AuditLog {
  /** Queues one event; `ts` is added. Never throws, never waits. */
  write(event: Record<string, unknown>): void;
  /** Resolves when everything written so far is on its way to the file (or dropped). */
  flush(): Promise<void>;
  close(): Promise<void>;
  readonly dropped: number;
}

const encoder = new TextEncoder();
const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve)); // ~8 µs; a 0 ms timer waits ~1–2 ms
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Creates the audit log. Opening happens lazily in the background. */
export function createAuditLog(options: AuditOptions): AuditLog {
  const now = options.now ?? Date.now;
  const max = options.maxBufferedLines ?? 10_000;
  const retain = options.retainDays ?? 30;
  let buffer: string[] = [];
  let file: Deno.FsFile | undefined;
  let fileDay = "";
  let writing: Promise<void> | undefined;
  let dropped = 0;
  let lastWarning = 0;
  let closed = false;

  function drop(n: number, reason: string) {
    dropped += n;
    options.onDrop?.(n, reason);
    if (now() - lastWarning > 60_000) {
      lastWarning = now();
      options.log?.warning("audit log: {n} line(s) dropped: {reason}", { n, reason });
    }
  }

  async function open(today: string) {
    const path = options.target;
    if (file && fileDay === today) return;
    try {
      file?.close();
    } catch { /* already closed */ }
    file = undefined;
    // Only a regular file is rotated: never rename a device or a pipe.
    const info = await Deno.stat(path).catch(() => null);
    if (info?.isFile && info.size > 0 && info.mtime && day(info.mtime.getTime()) !== today) {
      await Deno.rename(path, `${path}.${day(info.mtime.getTime())}`).catch(() => {});
      await prune(path, today).catch(() => {});
    }
    file = await Deno.open(path, { append: true, create: true, mode: 0o640 });
    fileDay = today;
  }

  async function prune(path: string, today: string) {
    if (retain <= 0) return;
    const cutoff = day(Date.parse(today) - retain * 86_400_000);
    const prefix = `${basename(path)}.`;
    for await (const e of Deno.readDir(dirname(path))) {
      const d = e.name.startsWith(prefix) ? e.name.slice(prefix.length) : "";
      if (/^\d{4}-\d{2}-\d{2}$/.test(d) && d < cutoff) await Deno.remove(join(dirname(path), e.name));
    }
  }

  async function writeAll(f: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
  }

  async function drain() {
    while (buffer.length > 0) {
      const lines = buffer;
      buffer = [];
      const bytes = encoder.encode(lines.join(""));
      try {
        if (options.target === "-") await writeAll(Deno.stdout, bytes);
        else {
          await open(day(now()));
          await writeAll(file!, bytes);
        }
      } catch (err) {
        drop(lines.length, (err as Error).message);
        try {
          file?.close();
        } catch { /* already closed */ }
        file = undefined; // reopen on the next batch
      }
    }
  }

  function kick() {
    writing ??= endOfTurn().then(drain).finally(() => {
      writing = undefined;
      if (buffer.length > 0 && !closed) kick();
    });
  }

  return {
    write(event) {
      if (!options.target || closed) return;
      if (buffer.length >= max) return drop(1, "buffer full (the audit target is too slow or failing)");
      buffer.push(JSON.stringify({ ts: new Date(now()).toISOString(), ...event }) + "\n");
      kick();
    },
    async flush() {
      while (writing) await writing;
    },
    async close() {
      while (writing) await writing;
      closed = true;
      try {
        file?.close();
      } catch { /* already closed */ }
      file = undefined;
    },
    get dropped() {
      return dropped;
    },
  };
}
