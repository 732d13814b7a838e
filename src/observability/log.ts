/**
 * Logging with LogTape: human text on a TTY, JSON lines otherwise; one category
 * per subsystem under "empath"; level changeable at runtime.
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

let current: LogSettings = { level: "info", format: "auto" };

/** Applies logging settings; safe to call again to change the level at runtime. */
export async function setupLogging(settings: LogSettings): Promise<void> {
  current = settings;
  const json = settings.format === "json" || (settings.format === "auto" && !Deno.stderr.isTerminal());
  const formatter = json ? getJsonLinesFormatter() : getTextFormatter({ timestamp: "date-time-tz" });
  await configure({
    reset: true,
    sinks: { stderr: (record: LogRecord) => writeStderr(formatter(record)) },
    loggers: [
      { category: ["empath"], lowestLevel: settings.level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

const encoder = new TextEncoder();
function writeStderr(line: string) {
  try {
    Deno.stderr.writeSync(encoder.encode(line));
  } catch {
    // stderr closed or full: logging must never take the daemon down.
  }
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

/** Flushes and detaches sinks (at shutdown). */
export async function closeLogging(): Promise<void> {
  await reset();
}
