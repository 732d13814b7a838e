/**
 * Smoke test of the benchmark scripts: each runs for real at a tiny scale (real daemon,
 * real Postfix, smtp-source and smtp-sink) and prints sane numbers. It checks that the
 * scripts work, not how fast anything is (targets live in docs/PERFORMANCE.md).
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const REPO = new URL("../../", import.meta.url).pathname;

/**
 * Runs `deno run -A bench/<script> ...args` to completion. After `timeoutMs` it sends
 * SIGINT (the scripts then stop what they started), and SIGKILL 20 s later.
 */
async function runBench(script: string, args: string[], timeoutMs = 90_000) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(REPO, "bench", script), ...args],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const interrupt = setTimeout(() => child.kill("SIGINT"), timeoutMs);
  const kill = setTimeout(() => child.kill("SIGKILL"), timeoutMs + 20_000);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(interrupt);
    clearTimeout(kill);
  }
}

Deno.test("bench/matrix.ts --quick relays through Empath and Postfix and prints rates, latency, ratio and targets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-bench-smoke-" });
  try {
    const json = join(dir, "matrix.jsonl");
    const r = await runBench("matrix.ts", ["--quick", "--json", json]);
    const all = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    assert.equal(r.code, 0, all);
    assert.match(r.stdout, /^machine: \d+ × .+, deno \d+\.\d+\.\d+, postfix \d/m, all);
    assert.match(r.stdout, /^load average at start: [\d.]+ [\d.]+ [\d.]+$/m, all);
    const ratio = /ratio empath\/postfix: (\d+\.\d\d)x/.exec(r.stdout);
    assert.ok(ratio && Number(ratio[1]) > 0, all);
    assert.match(r.stdout, /^ {2}(met {3}|MISSED) {2}end to end ≥ 3x Postfix/m, all);
    assert.match(r.stdout, /^ {2}(met {3}|MISSED) {2}p99 accept latency < 25 ms/m, all);

    const lines = (await Deno.readTextFile(json)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => `${l.kind}${l.mta ? ` ${l.mta}` : ""}`), [
      "machine",
      "cell empath",
      "cell postfix",
      "paced empath",
      "paced postfix",
      "targets",
    ]);
    for (const cell of lines.filter((l) => l.kind === "cell")) {
      const what = JSON.stringify(cell);
      assert.deepEqual([cell.size, cell.sessions, cell.recipients], [4096, 20, 1], what);
      assert.ok(cell.messages >= 100, what);
      assert.ok(cell.e2eRate > 0 && cell.e2eRate < 100_000, what);
      assert.ok(cell.acceptRate > 0 && cell.seconds > 0, what);
      assert.equal(cell.sinkExtra, 0, what);
      assert.equal(cell.latency.errors, 0, what);
      assert.ok(cell.latency.sent >= 20, what);
      assert.ok(cell.latency.p50 > 0 && cell.latency.p99 >= cell.latency.p50, what);
      assert.ok(cell.peakRssMb > 5 && cell.peakRssMb < 4096, what);
      assert.ok(cell.bg.load >= 0 && cell.loadAfter >= 0, what);
    }
    for (const paced of lines.filter((l) => l.kind === "paced")) {
      const what = JSON.stringify(paced);
      assert.equal(paced.rate, 200, what);
      assert.equal(paced.sent, 200, what);
      assert.equal(paced.errors, 0, what);
      assert.ok(paced.achieved > 50 && paced.achieved < 260, what);
      assert.ok(paced.p50 > 0 && paced.p99 >= paced.p50, what);
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("bench/queue_scale.ts, large_message.ts and connections.ts run at a tiny scale and print their numbers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-bench-scale-smoke-" });
  const json = (name: string) => join(dir, `${name}.jsonl`);
  const read = async (name: string) =>
    (await Deno.readTextFile(json(name))).trim().split("\n").map((l) => JSON.parse(l));
  try {
    // The three at once: each is small, and together they stay well under 30 s.
    const [queue, large, conns] = await Promise.all([
      runBench("queue_scale.ts", [
        ...["--sizes", "200", "--backends", "kv", "--modes", "retry", "--rest", "0.5", "--quiet"],
        ...["--json", json("queue")],
      ], 60_000),
      runBench("large_message.ts", ["--size-mb", "3", "--runs", "direct", "--json", json("large")], 60_000),
      runBench("connections.ts", [
        ...["--idle", "50", "--slow", "1", "--timeout", "2s", "--drip", "0.5", "--window", "4"],
        ...["--traffic-seconds", "0.5", "--json", json("conns")],
      ], 60_000),
    ]);
    for (const r of [queue, large, conns]) {
      const all = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
      assert.equal(r.code, 0, all);
      assert.match(r.stdout, /^machine: \d+ × .+, deno \d+\.\d+\.\d+/m, all);
      assert.match(r.stdout, /load (average )?[\d.]+ [\d.]+ [\d.]+/, all);
    }

    const [q] = await read("queue");
    const qs = JSON.stringify(q);
    assert.deepEqual([q.backend, q.mode, q.n], ["kv", "retry", 200], qs);
    assert.ok(q.fill.acceptRate > 0 && q.rest.rssMb > 20 && q.rest.hwmMb >= q.rest.rssMb, qs);
    assert.ok(q.rest.memory.rest.heapUsed > 0 && q.rest.memory.rest.rssAnon > 0, qs);
    assert.ok(q.rest.statsRequestMs.median > 0 && q.rest.statsCliMs.median > q.rest.statsRequestMs.median, qs);
    assert.match(q.rest.statsText, /^queue +200 message\(s\): queued 0, delivering 0, deferred 200/m, qs);
    assert.equal(q.drain.commandOut, "200 message(s) scheduled for immediate delivery", qs);
    assert.ok(q.drain.rate > 0 && q.drain.windowRates.length === 10 && q.drain.cpuMsPerMsg > 0, qs);

    const [l] = await read("large");
    const ls = JSON.stringify(l);
    assert.equal(l.sizeBytes, 3 * 1024 * 1024, ls);
    assert.ok(l.sinkBytes > l.sizeBytes && l.sinkBytes - l.sizeBytes < 1024, ls); // + our Received: header
    assert.match(l.reply, /^250 2\.0\.0 Ok: queued as /, ls);
    assert.ok(l.receive.rssBeforeMb > 20 && l.receive.peakMb >= l.receive.rssBeforeMb, ls);

    const [c] = await read("conns");
    const cs = JSON.stringify(c);
    assert.equal(c.idleOpen.opened, 50, cs);
    assert.equal(c.idleOpen.listed >= 50, true, cs);
    assert.ok(c.baseline.flat.sent > 0 && c.withIdle.flat.sent > 0 && c.withSlow.flat.sent > 0, cs);
    assert.equal(c.withSlow.flat.errors, 0, cs);
    // Idle and silent clients are cut by the 2 s timeouts with 421 4.4.2; drippers are reported either way.
    for (const kind of ["idle (after EHLO)", "silent-greeting", "silent-command", "silent-data"]) {
      assert.equal(c.cuts[kind]?.cut, c.cuts[kind]?.total, `${kind}: ${cs}`);
      assert.deepEqual(Object.keys(c.cuts[kind].replies), ["421 4.4.2"], `${kind}: ${cs}`);
      assert.ok(c.cuts[kind].min >= 1.5 && c.cuts[kind].max < 4, `${kind}: ${cs}`);
    }
    assert.ok(Object.keys(c.cuts).some((k) => k.startsWith("drip-command")), cs);
    assert.ok(Object.keys(c.cuts).some((k) => k.startsWith("drip-data")), cs);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
