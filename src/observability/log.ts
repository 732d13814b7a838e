/**
 * Logging with LogTape: human text on a TTY, JSON lines otherwise; one category
 * per subsystem under "empath"; level changeable at runtime.
 *
 * Lines go to stderr in batches (issue #18: one `writeSync` per line cost 4 % of the
 * relay's main thread). The sink appends each formatted line to a buffer and schedules
 * one flush per event-loop turn (`setImmediate`); the flush encodes the buffer once and
 * writes it with as few `writeSync` calls as the fd accepts. A line is never split
 * between batches and lines keep their order. The buffer is bounded (about 1 MiB of
 * text): a line that takes it over flushes at once, synchronously. Everything buffered
 * is written synchronously by {@link flushLogs}, {@link closeLogging},
 * {@link setupLogging} (before reconfiguring), on `Deno.exit` and a normal end (the
 * `unload` event), and on an uncaught error or unhandled rejection (before the runtime
 * prints it and exits). A SIGKILL (or a crash of the runtime itself) loses at most the
 * lines of the current event-loop turn.
 *
 * @example
 * ```ts
 * import { closeLogging, logger, setupLogging } from "./log.ts"; // @ts-ignore deno#26900
 *
 * await setupLogging({ level: "warning", format: "text" });
 * logger("smtp").info("accepted {id}", { id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R" }); // below "warning": not written
 * await closeLogging();
 * ```
 * @module
 */
import { clearImmediate, setImmediate } from "node:timers";
import {
  configure,
  getJsonLinesFormatter,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  reset,
} from "@logtape/logtape";

/** Logging settings (the [log] config section). */
export interface LogSettings {
  level: LogLevel;
  format: "auto" | "text" | "json";
}

/** Where batches go: all of `bytes`, or as much as it takes (returns the count, like `Deno.stderr.writeSync`). */
export type LogWriter = (bytes: Uint8Array) => number;

/** Buffered text (UTF-16 units) past which a line is flushed at once instead of at the end of the turn. */
export const LOG_BUFFER_LIMIT = 1 << 20;

let current: LogSettings = { level: "info", format: "auto" };
let writer: LogWriter = (bytes) => Deno.stderr.writeSync(bytes);

/** Applies logging settings; safe to call again to change the level at runtime. */
export async function setupLogging(settings: LogSettings): Promise<void> {
  flushLogs();
  installExitHooks();
  current = settings;
  const json = settings.format === "json" || (settings.format === "auto" && !Deno.stderr.isTerminal());
  const formatter = json ? getJsonLinesFormatter() : getTextFormatter({ timestamp: "date-time-tz" });
  await configure({
    reset: true,
    sinks: { stderr: (record: LogRecord) => enqueue(formatter(record)) },
    loggers: [
      { category: ["empath"], lowestLevel: settings.level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

let pending: string[] = [];
let pendingChars = 0;
let timer: ReturnType<typeof setImmediate> | undefined;

function enqueue(line: string) {
  pending.push(line);
  pendingChars += line.length;
  if (pendingChars >= LOG_BUFFER_LIMIT) flushLogs();
  else timer ??= setImmediate(flushLogs); // end of this turn (~8 µs; a 0 ms timer waits ~1–2 ms in Deno)
}

const encoder = new TextEncoder();

/** Writes every buffered line now, synchronously (also called at the end of each event-loop turn). */
export function flushLogs(): void {
  if (timer !== undefined) {
    clearImmediate(timer);
    timer = undefined;
  }
  if (pending.length === 0) return;
  const bytes = encoder.encode(pending.length === 1 ? pending[0] : pending.join(""));
  pending = [];
  pendingChars = 0;
  try {
    let off = 0;
    while (off < bytes.length) {
      const n = writer(off === 0 ? bytes : bytes.subarray(off));
      if (n <= 0) break; // nothing accepted: give up on this batch rather than spin
      off += n;
    }
  } catch {
    // stderr closed or full: logging must never take the daemon down.
  }
}

let hooked = false;
function installExitHooks() {
  if (hooked) return;
  hooked = true;
  // Listeners run before the runtime reports an uncaught error and exits; they do not handle it.
  globalThis.addEventListener("unload", flushLogs);
  globalThis.addEventListener("error", flushLogs);
  globalThis.addEventListener("unhandledrejection", flushLogs);
}

/**
 * Replaces where batches are written (default: `Deno.stderr.writeSync`); returns the
 * previous writer. For tests: pending lines are flushed to the old writer first.
 */
export function setLogWriter(next: LogWriter): LogWriter {
  flushLogs();
  const previous = writer;
  writer = next;
  return previous;
}

/** Changes the level at runtime. */
export async function setLogLevel(level: LogLevel): Promise<void> {
  await setupLogging({ ...current, level });
}

/** The current level. */
export function logLevel(): LogLevel {
  return current.level;
}

/** A logger for a subsystem: logger("smtp") → category ["empath", "smtp"]. */
export function logger(subsystem: string): Logger {
  return getLogger(["empath", subsystem]);
}

/** Writes what is buffered and detaches sinks (at shutdown). */
export async function closeLogging(): Promise<void> {
  flushLogs();
  await reset();
  flushLogs();
}
