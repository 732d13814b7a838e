/** The daemon's process metrics agree with what /proc says about its process (they read 0 before). */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/mod.ts";

function has(text: string, name: string): boolean {
  return new RegExp(`^${name} `, "m").test(text);
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  assert.ok(m?.[1], `missing ${name}`);
  return Number(m[1]);
}

async function procOf(pid: number) {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return { rss: Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) * 1024 };
}

Deno.test("with the start task's permissions, RSS and heap are real and /proc-only gauges are absent, not 0", async () => {
  await using d = await startDaemon({ logLevel: "info" });
  const text = await fetch(`http://127.0.0.1:${d.portOf("http")}/metrics`).then((r) => r.text());
  const { rss } = await procOf(d.child.pid);
  const reported = metric(text, "empath_process_resident_memory_bytes");
  assert.ok(reported > 10_000_000, `RSS ${reported}`);
  assert.ok(Math.abs(reported - rss) / rss < 0.25, `RSS ${reported} vs /proc ${rss}`);
  assert.ok(metric(text, "empath_nodejs_heap_size_used_bytes") > 1_000_000);
  // Deno 2 grants /proc/self only with --allow-all: no descriptor count rather than a false 0.
  for (const name of ["empath_process_open_fds", "empath_process_virtual_memory_bytes"]) {
    if (has(text, name)) assert.ok(metric(text, name) > 0, `${name} is 0`);
  }
});
