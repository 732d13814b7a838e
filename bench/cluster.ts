/**
 * Cluster benchmark: smtp-source → Empath → smtp-sink with the queue on PostgreSQL (a
 * private server from testing/postgres.ts, fsync and synchronous_commit on), compared in
 * the same run with the local Deno KV backend:
 * - `kv×1`: one node, local KV queue and spool (fsync on);
 * - `pg×1`: one node on PostgreSQL;
 * - `pg×3`: three nodes on one PostgreSQL database, the load split across them.
 * Each run sends 4 KB × 20 sessions and 100 KB × 20 sessions to every setup in turn
 * (interleaved, so a busy machine hurts all alike); the medians of `--runs` runs are
 * reported with the load average of each run. Then claims per second of the store's
 * claim/release against the number of nodes (1, 2, 3), see bench/lib/claims.ts.
 *
 * On one 2-core machine this shows the overhead of the PostgreSQL backend and that nodes
 * share the work, not how the design scales (docs/SCALING.md).
 *
 *   deno run -A bench/cluster.ts                         # 3 runs, 1000 × 4 KB, 200 × 100 KB
 *   deno run -A bench/cluster.ts --runs 5 --messages 2000 --json /tmp/cluster.jsonl
 *   deno run -A bench/cluster.ts --quick                 # tiny (the smoke test)
 * @module
 */
import { benchArgs } from "./lib/cli_args.ts";
import { postgresAvailable, startPostgres, type TestPostgres } from "../testing/postgres.ts";
import { claimRate, seedDueRecords } from "./lib/claims.ts";
import {
  appendJson,
  BenchSetupError,
  loadAvg,
  loadAvgs,
  machineInfo,
  machineLine,
  median,
  requireLoadTools,
  type Sink,
  spawnSmtpSource,
  startEmpath,
  startSink,
  stopAllOnSignal,
  table,
  track,
  within,
} from "./lib/mod.ts";

const args = benchArgs({
  usage: "deno run -A bench/cluster.ts [options]",
  options: {
    runs: { type: "string", default: "3", check: "number", help: "runs per cell (the median is reported)" },
    messages: { type: "string", default: "1000", check: "number", help: "4 KB messages per run" },
    "large-messages": { type: "string", default: "200", check: "number", help: "100 KB messages per run" },
    sessions: { type: "string", default: "20", check: "number", help: "parallel smtp-source sessions" },
    "claim-seconds": { type: "string", default: "5", check: "number", help: "length of each claim-rate run" },
    quick: { type: "boolean", help: "tiny runs (the smoke test)" },
    json: { type: "string", arg: "FILE", help: "append results as JSON lines" },
  },
}).values;
const QUICK = args.quick;
const RUNS = QUICK ? 1 : Number(args.runs);
const SESSIONS = Number(args.sessions);
const SIZES = [
  { size: 4096, messages: QUICK ? 40 : Number(args.messages) },
  { size: 102_400, messages: QUICK ? 10 : Number(args["large-messages"]) },
];
const CLAIM_SECONDS = QUICK ? 1 : Number(args["claim-seconds"]);

/** A set of nodes under test. */
interface Setup {
  name: "kv×1" | "pg×1" | "pg×3";
  ports: number[];
  stop(): Promise<void>;
}

/** One measured run of one setup and size. */
interface RunResult {
  setup: string;
  size: number;
  run: number;
  messages: number;
  e2eRate: number;
  acceptRate: number;
  load: number;
}

async function freshDatabase(pg: TestPostgres, name: string): Promise<string> {
  await pg.psql(`CREATE DATABASE ${name}`);
  return pg.url.replace(/\/empath$/, `/${name}`);
}

async function startSetup(name: Setup["name"], sinkPort: number, url?: string): Promise<Setup> {
  const count = name === "pg×3" ? 3 : 1;
  const toml = url ? `[queue]\nbackend = "postgres"\nurl = "${url}"\n` : "";
  const nodes: Awaited<ReturnType<typeof startEmpath>>[] = [];
  for (let i = 0; i < count; i++) nodes.push(await startEmpath(sinkPort, toml));
  return {
    name,
    ports: nodes.map((n) => n.port),
    stop: async () => void await Promise.all(nodes.map((n) => n.stop())),
  };
}

/** Splits `total` into `parts` near-equal positive shares. */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/** Sends `messages` spread over the setup's nodes and waits until the sink has them all. */
async function relay(setup: Setup, sink: Sink, size: number, messages: number): Promise<Omit<RunResult, "run">> {
  const base = sink.count;
  const load = await loadAvg();
  const t0 = performance.now();
  const sessions = split(SESSIONS, setup.ports.length);
  const counts = split(messages, setup.ports.length);
  const sources = setup.ports.map((port, i) =>
    spawnSmtpSource({ port, messages: counts[i]!, sessions: Math.max(1, sessions[i]!), size })
  );
  try {
    await sink.waitFor(base + messages, Math.max(300_000, messages * 200), 30_000);
    const t1 = performance.now();
    const done = await within(Promise.all(sources.map((s) => s.done)), 30_000);
    if (!done) throw new BenchSetupError("stalled", `${setup.name}: smtp-source still running after the sink got all`);
    const failed = done.find((d) => d.code !== 0);
    if (failed) throw new BenchSetupError("start_failed", `${setup.name}: smtp-source failed: ${failed.stderr}`);
    const accepted = Math.max(...done.map((d) => d.at));
    return {
      setup: setup.name,
      size,
      messages,
      e2eRate: messages / ((t1 - t0) / 1000),
      acceptRate: messages / ((accepted - t0) / 1000),
      load,
    };
  } catch (err) {
    await Promise.all(sources.map((s) => s.kill()));
    throw err;
  }
}

async function relayPhase(pg: TestPostgres): Promise<RunResult[]> {
  const sink = await startSink();
  const setups: Setup[] = [];
  const results: RunResult[] = [];
  try {
    setups.push(await startSetup("kv×1", sink.port));
    setups.push(await startSetup("pg×1", sink.port, await freshDatabase(pg, "bench_one")));
    setups.push(await startSetup("pg×3", sink.port, await freshDatabase(pg, "bench_three")));
    // Warm-up: JIT, pooled connections, database caches.
    for (const s of setups) await relay(s, sink, 4096, QUICK ? 10 : 200);
    for (let run = 1; run <= RUNS; run++) {
      for (const { size, messages } of SIZES) {
        for (const s of setups) {
          const r = { ...(await relay(s, sink, size, messages)), run };
          results.push(r);
          await appendJson(args.json, { kind: "run", ...r });
          console.log(
            `run ${run} ${s.name} ${size >= 102_400 ? "100 KB" : "4 KB"}: ${r.e2eRate.toFixed(0)} msg/s end to end, ` +
              `${r.acceptRate.toFixed(0)} msg/s accepted (load ${r.load.toFixed(2)})`,
          );
        }
      }
    }
  } finally {
    for (const s of setups) await s.stop();
    await sink.stop();
  }
  return results;
}

async function main(): Promise<void> {
  requireLoadTools();
  if (!(await postgresAvailable())) {
    throw new BenchSetupError(
      "missing_tool",
      "needs the PostgreSQL server binaries (apt-get install postgresql), as root",
    );
  }
  stopAllOnSignal();
  const machine = await machineInfo();
  const loadStart = await loadAvgs();
  console.log(
    `cluster benchmark: ${RUNS} run(s); ${SIZES.map((s) => `${s.messages} × ${s.size} B`).join(", ")}; ` +
      `${SESSIONS} sessions; kv×1, pg×1, pg×3`,
  );
  console.log(machineLine(machine));
  console.log(`load average at start: ${loadStart.join(" ")}`);
  await appendJson(args.json, { kind: "machine", ...machine, load: loadStart });

  const pg = await startPostgres();
  const untrack = track(`postgres (${pg.dir})`, () => pg.cleanup());
  try {
    const runs = await relayPhase(pg);
    const rows: (string | number)[][] = [];
    for (const { size } of SIZES) {
      for (const setup of ["kv×1", "pg×1", "pg×3"]) {
        const mine = runs.filter((r) => r.setup === setup && r.size === size);
        const m = {
          setup,
          size,
          runs: mine.length,
          e2eRate: median(mine.map((r) => r.e2eRate)),
          acceptRate: median(mine.map((r) => r.acceptRate)),
          load: median(mine.map((r) => r.load)),
        };
        await appendJson(args.json, { kind: "median", ...m });
        rows.push([
          setup,
          size >= 102_400 ? "100 KB" : "4 KB",
          m.e2eRate.toFixed(0),
          m.acceptRate.toFixed(0),
          mine.map((r) => r.e2eRate.toFixed(0)).join(" "),
          m.load.toFixed(2),
        ]);
      }
    }
    console.log(`\nmedians of ${RUNS} run(s), ${SESSIONS} sessions`);
    console.log(table(["SETUP", "SIZE", "E2E MSG/S", "ACCEPT MSG/S", "RUNS (E2E)", "LOAD"], rows));

    const claimUrl = await freshDatabase(pg, "bench_claims");
    await seedDueRecords(claimUrl, QUICK ? 200 : 2000);
    const claimRows: (string | number)[][] = [];
    for (const nodes of [1, 2, 3]) {
      const rates = [];
      for (let run = 0; run < RUNS; run++) {
        const load = await loadAvg();
        const r = await claimRate({ url: claimUrl, nodes, seconds: CLAIM_SECONDS });
        rates.push({ ...r, load });
        await appendJson(args.json, { kind: "claims", ...r, load, run: run + 1 });
      }
      const overlaps = rates.reduce((n, r) => n + r.overlaps, 0);
      claimRows.push([
        nodes,
        median(rates.map((r) => r.claimsPerSec)).toFixed(0),
        median(rates.map((r) => r.claimP50Ms)).toFixed(1),
        rates.map((r) => r.claimsPerSec.toFixed(0)).join(" "),
        overlaps,
        median(rates.map((r) => r.load)).toFixed(2),
      ]);
    }
    console.log(`\nclaims per second (claim 20 + release, one loop per node, ${CLAIM_SECONDS} s, median of ${RUNS})`);
    console.log(table(["NODES", "CLAIMS/S", "CLAIM P50 MS", "RUNS", "OVERLAPS", "LOAD"], claimRows));
  } finally {
    untrack();
    await pg.cleanup();
  }
  console.log(`load average at end: ${(await loadAvgs()).join(" ")}`);
}

try {
  await main();
} catch (err) {
  console.error(err instanceof BenchSetupError ? `bench/cluster.ts: ${err.message}` : err);
  Deno.exit(1);
}
