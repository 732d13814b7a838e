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
