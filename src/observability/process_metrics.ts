/**
 * Process metrics with Deno APIs. prom-client's memory and descriptor gauges read 0 under
 * Deno, so they are replaced: the resident size comes from /proc/self/status when it can be
 * read, else from `Deno.memoryUsage()` (always available). Deno 2 lets a program read its own
 * /proc/self (status, fd, limits) only with `--allow-all`, whatever `--allow-read` says; the
 * gauges that need it (open and maximum descriptors, virtual memory, threads) are registered
 * only when it is readable, so they are absent rather than a false 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import client from "prom-client";
 * import { registerProcessMetrics } from "./process_metrics.ts"; // @ts-ignore deno#26900
 *
 * const registry = new client.Registry();
 * registerProcessMetrics(registry, "empath_");
 * assert.match(await registry.metrics(), /empath_process_resident_memory_bytes [1-9]/);
 * ```
 * @module
 */
import client from "prom-client";

/** prom-client default metrics that read 0 under Deno; {@link registerProcessMetrics} provides them. */
export const REPLACED_DEFAULTS = [
  "process_resident_memory_bytes",
  "process_virtual_memory_bytes",
  "process_heap_bytes",
  "process_open_fds",
  "process_max_fds",
] as const;

/** Fields of /proc/self/status in bytes (kB lines) or counts; empty when it cannot be read. */
export function procStatus(text?: string): Record<string, number> {
  let body = text;
  if (body === undefined) {
    try {
      body = Deno.readTextFileSync("/proc/self/status");
    } catch {
      return {};
    }
  }
  const out: Record<string, number> = {};
  for (const line of body.split("\n")) {
    const m = /^(\w+):\s+(\d+)(\s+kB)?/.exec(line);
    if (m?.[1] && m[2]) out[m[1]] = Number(m[2]) * (m[3] ? 1024 : 1);
  }
  return out;
}

/** Entries of /proc/self/fd (open descriptors), or undefined when it cannot be read. */
export function openFds(): number | undefined {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    return Math.max(0, n - 1); // the directory handle being read is one of them
  } catch {
    return undefined;
  }
}

/** The soft "Max open files" of /proc/self/limits, or undefined. */
export function maxFds(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(Deno.readTextFileSync("/proc/self/limits"));
    return m?.[1] ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Registers the process gauges under `prefix` (removing prom-client's versions first). */
export function registerProcessMetrics(registry: client.Registry, prefix: string): void {
  for (const name of REPLACED_DEFAULTS) registry.removeSingleMetric(`${prefix}${name}`);
  const gauge = (name: string, help: string, value: () => number | undefined) => {
    if (value() === undefined) return; // not readable here: leave the metric out
    new client.Gauge({
      name: `${prefix}${name}`,
      help,
      registers: [registry],
      collect() {
        const v = value();
        if (v !== undefined) this.set(v);
      },
    });
  };
  gauge(
    "process_resident_memory_bytes",
    "Resident memory size in bytes (VmRSS)",
    () => procStatus().VmRSS ?? Deno.memoryUsage().rss,
  );
  gauge("process_virtual_memory_bytes", "Virtual memory size in bytes (VmSize)", () => procStatus().VmSize);
  gauge("process_heap_bytes", "Process heap size in bytes (VmData)", () => procStatus().VmData);
  gauge("process_threads", "OS threads of the process", () => procStatus().Threads);
  gauge("process_open_fds", "Open file descriptors", openFds);
  gauge("process_max_fds", "Maximum number of open file descriptors", maxFds);
}
