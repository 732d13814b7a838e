/** Process gauges against this test process's own /proc (tests run with --allow-all, so /proc/self is readable). */
import assert from "node:assert/strict";
import client from "prom-client";
import { maxFds, openFds, procStatus, registerProcessMetrics } from "../../src/observability/process_metrics.ts";

Deno.test("procStatus parses kB fields to bytes and plain counts as numbers", () => {
  const s = procStatus("Name:\tdeno\nVmSize:\t  2048 kB\nVmRSS:\t   100 kB\nThreads:\t7\n");
  assert.deepEqual(s, { VmSize: 2048 * 1024, VmRSS: 100 * 1024, Threads: 7 });
});

Deno.test("the gauges match /proc/self: resident memory, open and max descriptors, threads", async () => {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "t_" });
  registerProcessMetrics(registry, "t_");
  const held = await Promise.all([1, 2, 3].map(() => Deno.open("/dev/null")));
  try {
    const text = await registry.metrics();
    const value = (name: string) => Number(new RegExp(`^t_${name} (\\S+)$`, "m").exec(text)?.[1]);
    const status = await Deno.readTextFile("/proc/self/status");
    const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) * 1024;
    assert.ok(Math.abs(value("process_resident_memory_bytes") - rss) / rss < 0.1);
    const fds = (await Array.fromAsync(Deno.readDir("/proc/self/fd"))).length - 1;
    assert.ok(Math.abs(value("process_open_fds") - fds) <= 2, `${value("process_open_fds")} vs ${fds}`);
    assert.ok(value("process_open_fds") >= 3, "the three files are counted");
    assert.equal(openFds() !== undefined, true);
    assert.equal(value("process_max_fds"), maxFds());
    assert.ok(value("process_threads") >= 1);
    assert.equal(
      (text.match(/^t_process_resident_memory_bytes /gm) ?? []).length,
      1,
      "one series, not prom-client's too",
    );
  } finally {
    held.forEach((f) => f.close());
  }
});
