/**
 * Where a daemon's resident memory is: /proc/<pid>/status (VmRSS split into anonymous,
 * file-backed and shared pages) and the V8 heap and external (ArrayBuffer) memory from
 * the daemon's own Prometheus /metrics (prom-client's `nodejs_*` gauges).
 * @module
 */

/** One look at a process's memory, in MB. */
export interface MemoryBreakdown {
  rss: number;
  hwm: number;
  /** Anonymous pages: V8 heap, ArrayBuffers, malloc'd memory (SQLite's cache included). */
  rssAnon: number;
  /** File pages mapped into the process (code, mmap'd files). */
  rssFile: number;
  rssShmem: number;
  /** V8 heap used / reserved, and memory of ArrayBuffers/Buffers outside the heap. */
  heapUsed: number;
  heapTotal: number;
  external: number;
}

const kbField = (text: string, name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN) / 1024;

function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, "m").exec(text);
  return m ? Number(m[1]) / (1024 * 1024) : NaN;
}

/** Reads {@link MemoryBreakdown} of `pid`, whose metrics listener is on `httpPort`. */
export async function memoryBreakdown(pid: number, httpPort?: number): Promise<MemoryBreakdown> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  let metrics = "";
  if (httpPort) {
    metrics = await fetch(`http://127.0.0.1:${httpPort}/metrics`).then((r) => r.text()).catch(() => "");
  }
  return {
    rss: kbField(status, "VmRSS"),
    hwm: kbField(status, "VmHWM"),
    rssAnon: kbField(status, "RssAnon"),
    rssFile: kbField(status, "RssFile"),
    rssShmem: kbField(status, "RssShmem"),
    heapUsed: gauge(metrics, "empath_nodejs_heap_size_used_bytes"),
    heapTotal: gauge(metrics, "empath_nodejs_heap_size_total_bytes"),
    external: gauge(metrics, "empath_nodejs_external_memory_bytes"),
  };
}

/** "VmRSS 343 MB (anon 300, file 40, shmem 3); V8 heap 120/150 MB used/total, external 5 MB" */
export function memoryText(m: MemoryBreakdown): string {
  const f = (x: number) => Number.isNaN(x) ? "?" : x.toFixed(0);
  return `VmRSS ${f(m.rss)} MB (anon ${f(m.rssAnon)}, file ${f(m.rssFile)}, shmem ${f(m.rssShmem)}); ` +
    `V8 heap ${f(m.heapUsed)}/${f(m.heapTotal)} MB used/total, external ${f(m.external)} MB`;
}
