/**
 * Smoke test of bench/cluster.ts at a tiny scale (`--quick`: one run, 40 × 4 KB and
 * 10 × 100 KB per setup, 1 s of claims per node count): real daemons on the local KV
 * queue and on a private PostgreSQL, smtp-source and smtp-sink. It checks that the
 * script works and reports sane numbers, not how fast anything is (docs/SCALING.md).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { postgresAvailable } from "../../testing/postgres.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const ignore = !(await postgresAvailable());

Deno.test(
  { name: "bench/cluster.ts --quick relays through kv×1, pg×1 and pg×3 and measures claims/s", ignore },
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "empath-bench-cluster-" });
    try {
      const json = join(dir, "cluster.jsonl");
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(REPO, "bench", "cluster.ts"), "--quick", "--json", json],
        cwd: REPO,
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
        env: { NO_COLOR: "1" },
      }).spawn();
      const interrupt = setTimeout(() => child.kill("SIGINT"), 150_000);
      const out = await child.output().finally(() => clearTimeout(interrupt));
      const dec = new TextDecoder();
      const stdout = dec.decode(out.stdout);
      const all = `stdout:\n${stdout}\nstderr:\n${dec.decode(out.stderr)}`;
      assert.equal(out.code, 0, all);
      assert.match(stdout, /^load average at start: [\d.]+ [\d.]+ [\d.]+$/m, all);
      assert.match(stdout, /^load average at end: [\d.]+ [\d.]+ [\d.]+$/m, all);

      const lines = (await Deno.readTextFile(json)).trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(lines[0].kind, "machine");
      const medians = lines.filter((l) => l.kind === "median");
      assert.deepEqual(
        medians.map((m) => `${m.setup} ${m.size}`),
        ["kv×1 4096", "pg×1 4096", "pg×3 4096", "kv×1 102400", "pg×1 102400", "pg×3 102400"],
      );
      for (const m of medians) {
        assert.equal(m.runs, 1, JSON.stringify(m));
        assert.ok(m.e2eRate > 0 && m.e2eRate < 100_000, JSON.stringify(m));
        assert.ok(m.acceptRate > 0 && m.load >= 0, JSON.stringify(m));
      }
      const claims = lines.filter((l) => l.kind === "claims");
      assert.deepEqual(claims.map((c) => c.nodes), [1, 2, 3]);
      for (const c of claims) {
        assert.ok(c.claims > 0 && c.claimsPerSec > 0, JSON.stringify(c));
        assert.equal(c.overlaps, 0, JSON.stringify(c));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
