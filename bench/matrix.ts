/**
 * The relay matrix: `smtp-source` → MTA → `smtp-sink` for every combination of
 * message size (1 KB, 4 KB, 100 KB), sessions (1, 20) and recipients (1, 10), for
 * Empath and Postfix in the same run on the same machine, cell by cell (Empath then
 * Postfix, so both see the same background load). Per cell: end-to-end rate, accept
 * rate, p50/p99 accept latency (a Deno client timing MAIL FROM … final 250 at the
 * same size/sessions/recipients, flat out), peak memory, Empath/Postfix ratio. Then
 * accept latency at a fixed offered rate (default 200 msg/s, 4 KB, 20 sessions), and
 * the three targets of issue #8, met or missed.
 *
 * The message count per cell adapts to the rate measured so far so each cell takes
 * about `--seconds` (default 5), after a warm-up (a tenth of that, at least 200
 * messages) which is not counted (a fresh Empath daemon per cell; one Postfix for the whole run); the full
 * matrix takes ~5–8 minutes on 2 cores.
 * Before each cell the script waits (up to 30 s) for the machine to be quiet and
 * prints the load average and background CPU next to the numbers.
 *
 *   flock /tmp/empath-bench.lock deno run -A bench/matrix.ts --json var/bench/matrix.jsonl
 *   deno run -A bench/matrix.ts --quick                       # one cell, ~15 s (the smoke test)
 *   deno run -A bench/matrix.ts --sizes 4096 --sessions 20 --recipients 1
 *   deno run -A bench/matrix.ts --skip-postfix                # Empath only
 *   deno run -A bench/matrix.ts --paced-only --skip-postfix   # only Empath's paced run (200 msg/s), ~25 s
 *   deno run -A bench/matrix.ts --peers haraka                # Postfix and Haraka 3.3.4
 *
 * Postfix needs root and Debian's postfix package (see bench/lib/postfix.ts).
 * @module
 */
import { benchArgs } from "./lib/cli_args.ts";
import {
  appendJson,
  BenchSetupError,
  bgText,
  type CellResult,
  type CellSpec,
  loadAvgs,
  machineInfo,
  machineLine,
  type Mta,
  pacedLatency,
  type PacedResult,
  requireLoadTools,
  requirePostfix,
  runCell,
  startEmpath,
  startPostfixMta,
  startSink,
  stopAllOnSignal,
  table,
} from "./lib/mod.ts";
import { runDkimCell } from "./lib/dkim_cell.ts";
import { requireHaraka, startHarakaMta } from "./lib/haraka.ts";

const args = benchArgs({
  usage: "deno run -A bench/matrix.ts [options]   (defaults: full run; --quick values in brackets)",
  options: {
    sizes: { type: "string", check: "numbers", help: "message sizes, octets (default 1024,4096,102400 [4096])" },
    sessions: { type: "string", check: "numbers", help: "parallel smtp-source sessions (default 1,20 [20])" },
    recipients: { type: "string", check: "numbers", help: "recipients per message (default 1,10 [1])" },
    seconds: { type: "string", check: "number", help: "target length of each cell's smtp-source run (default 5 [1])" },
    "latency-seconds": {
      type: "string",
      check: "number",
      help: "length of each cell's latency run, Deno client flat out (default 2 [0.5])",
    },
    rate: { type: "string", check: "number", help: "offered rate of the paced latency run, 0 skips it (default 200)" },
    "rate-seconds": { type: "string", check: "number", help: "length of the paced run (default 10 [1])" },
    "max-messages": { type: "string", check: "number", help: "cap per cell (default 20000 [2000])" },
    "max-busy": {
      type: "string",
      check: "number",
      help: "wait (up to --max-wait s) until other work uses at most this % CPU (default 25 [100])",
    },
    "max-wait": { type: "string", check: "number", help: "longest wait for a quiet machine, s (default 30 [0])" },
    "skip-postfix": { type: "boolean", help: "Empath only" },
    peers: {
      type: "string",
      arg: "haraka",
      help: "also Haraka 3.3.4 (npm, into a temp prefix; its get_mx hook points at the sink)",
    },
    json: { type: "string", arg: "FILE", help: "append one JSON line per cell (and machine, paced, targets)" },
    "dkim-rounds": {
      type: "string",
      check: "number",
      help: 'rounds of the "DKIM on" cell (4 KB × 20: unsigned, RSA-2048, Ed25519); 0 skips (default 1 [0])',
    },
    "dkim-only": { type: "boolean", help: "only the DKIM cell (no matrix, no paced run, no Postfix)" },
    "paced-only": { type: "boolean", help: "only the paced latency run (no matrix, no DKIM cell)" },
    quick: { type: "boolean", help: "one cell (4 KB × 20 sessions × 1 rcpt), ~1 s runs, no waiting for quiet" },
  },
}).values;
const quick = args.quick;
/** An option's value: given, else its --quick value, else its default. */
function opt(name: keyof typeof args, full: string, short: string): string {
  const v = args[name];
  return typeof v === "string" ? v : quick ? short : full;
}
function numbers(name: keyof typeof args, full: string, short: string): number[] {
  const text = opt(name, full, short);
  const list = text.split(",").map(Number);
  if (list.some((n) => !Number.isFinite(n) || n < 0)) {
    console.error(`error: --${name}: expected non-negative numbers, got "${text}" (see --help)`);
    Deno.exit(2);
  }
  return list;
}
/** The first number of a `numbers` option (the list is never empty: `split` gives at least one). */
const first = (name: keyof typeof args, full: string, quickDefault: string): number =>
  numbers(name, full, quickDefault)[0]!;
const SIZES = numbers("sizes", "1024,4096,102400", "4096");
const SESSIONS = numbers("sessions", "1,20", "20");
const RECIPIENTS = numbers("recipients", "1,10", "1");
const SECONDS = first("seconds", "5", "1");
const LAT_SECONDS = first("latency-seconds", "2", "0.5");
const RATE = first("rate", "200", "200");
const RATE_SECONDS = first("rate-seconds", "10", "1");
const MAX_MESSAGES = first("max-messages", "20000", "2000");
const MAX_BUSY = first("max-busy", "25", "100");
const MAX_WAIT = first("max-wait", "30", "0");
const SAMPLE_MS = quick ? 200 : 1000;
const MIN_MESSAGES = quick ? 100 : 50;
const DKIM_ROUNDS = first("dkim-rounds", "1", "0");
const DKIM_ONLY = args["dkim-only"];
const PACED_ONLY = args["paced-only"] && !DKIM_ONLY;
const POSTFIX = !args["skip-postfix"] && !DKIM_ONLY;
const PEERS = (args.peers ?? "").split(",").filter(Boolean);
if (PEERS.some((p) => p !== "haraka")) {
  console.error(`error: --peers: only "haraka" is supported, got "${args.peers}" (see --help)`);
  Deno.exit(2);
}
const HARAKA = PEERS.includes("haraka") && !DKIM_ONLY;
/** The MTAs measured in each cell, in order (Empath first, so all see the same background load). */
const MTAS = ["empath", ...(POSTFIX ? ["postfix"] : []), ...(HARAKA ? ["haraka"] : [])] as const;
type MtaName = "empath" | "postfix" | "haraka";

/** First guesses (msg/s) before anything was measured; replaced by measured rates as the run goes. */
function guess(mta: string, spec: CellSpec): number {
  const big = spec.size > 50_000;
  if (spec.sessions === 1) return mta === "empath" ? (big ? 60 : 120) : (big ? 40 : 60);
  return mta === "empath" ? (big ? 300 : 650) : (big ? 150 : 250);
}
const measured = new Map<string, number>();
const key = (mta: string, spec: CellSpec) => `${mta}/${spec.size}/${spec.sessions}`;
function messagesFor(mta: string, spec: CellSpec, seconds: number): number {
  const rate = measured.get(key(mta, spec)) ?? guess(mta, spec);
  return Math.max(MIN_MESSAGES, Math.min(MAX_MESSAGES, Math.round(rate * seconds)));
}

const fmtLat = (r?: CellResult) => r?.latency ? `${r.latency.p50.toFixed(1)}/${r.latency.p99.toFixed(1)}` : "-";
const loadText = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");

function printCell(r: CellResult) {
  console.log(
    `  ${r.mta.padEnd(7)} ${String(r.messages).padStart(5)} msgs  e2e ${r.e2eRate.toFixed(0).padStart(4)} msg/s  ` +
      `accept ${r.acceptRate.toFixed(0).padStart(4)} msg/s  latency p50/p99 ${fmtLat(r)} ms  ` +
      `peak ${r.mta === "empath" ? "RSS" : "PSS"} ${r.peakRssMb.toFixed(0)} MB` +
      `${r.cpuMsPerMsg !== undefined ? `  cpu ${r.cpuMsPerMsg.toFixed(2)} ms/msg` : ""}` +
      `  (${bgText(r.bg)}, load after ${r.loadAfter.toFixed(2)})`,
  );
}

function printPaced(p: PacedResult) {
  console.log(
    `paced ${p.mta.padEnd(7)} offered ${p.rate}/s (${p.size} B, ${p.sessions} sessions): achieved ${
      p.achieved.toFixed(0)
    }/s, accept latency p50 ${p.p50.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms (from schedule ${
      p.p99FromSchedule.toFixed(1)
    } ms), max ${p.max.toFixed(1)} ms, errors ${p.errors} (${bgText(p.bg)}, load after ${p.loadAfter.toFixed(2)})`,
  );
}

/** One cell's results: Empath, and each peer measured. */
interface Row {
  empath: CellResult;
  postfix?: CellResult;
  haraka?: CellResult;
}

/** One of issue #8's targets. */
interface Target {
  name: string;
  measured: string;
  met: boolean | undefined;
}

function targets(rows: Row[], paced: PacedResult[]): Target[] {
  const cell = (size: number, sessions: number) =>
    rows.find((r) => r.empath.size === size && r.empath.sessions === sessions && r.empath.recipients === 1);
  const c4 = cell(4096, 20);
  const c100 = cell(102400, 20);
  const p = paced.find((x) => x.mta === "empath" && x.rate === 200);
  const ratio = c4?.postfix ? c4.empath.e2eRate / c4.postfix.e2eRate : undefined;
  return [
    {
      name: "end to end ≥ 3x Postfix, 4 KB × 20 sessions × 1 rcpt",
      measured: ratio !== undefined
        ? `${ratio.toFixed(2)}x (${c4!.empath.e2eRate.toFixed(0)} vs ${c4!.postfix!.e2eRate.toFixed(0)} msg/s)`
        : "not measured",
      met: ratio === undefined ? undefined : ratio >= 3,
    },
    {
      name: "≥ 750 msg/s end to end, 100 KB × 20 sessions × 1 rcpt, fsync on",
      measured: c100 ? `${c100.empath.e2eRate.toFixed(0)} msg/s` : "not measured",
      met: c100 ? c100.empath.e2eRate >= 750 : undefined,
    },
    {
      name: "p99 accept latency < 25 ms at 200 msg/s offered (4 KB, 20 sessions)",
      measured: p ? `${p.p99.toFixed(1)} ms (achieved ${p.achieved.toFixed(0)}/s)` : "not measured",
      met: p ? p.p99 < 25 && p.errors === 0 : undefined,
    },
  ];
}

async function main(): Promise<void> {
  requireLoadTools();
  if (POSTFIX) await requirePostfix();
  if (HARAKA) await requireHaraka();
  stopAllOnSignal();

  const machine = await machineInfo();
  const loadStart = await loadAvgs();
  console.log(machineLine(machine));
  console.log(`load average at start: ${loadText(loadStart)}`);
  await appendJson(args.json, { kind: "machine", ...machine, loadStart, quick });

  const specs: CellSpec[] = [];
  for (const size of DKIM_ONLY || PACED_ONLY ? [] : SIZES) {
    for (const sessions of SESSIONS) {
      for (const recipients of RECIPIENTS) specs.push({ size, sessions, recipients });
    }
  }
  const started = performance.now();
  const wait = { maxBusy: MAX_BUSY, maxWaitMs: MAX_WAIT * 1000, sampleMs: SAMPLE_MS };
  const results: Row[] = [];
  const paced: PacedResult[] = [];
  const sink = await startSink();
  let postfix: Mta | undefined;
  let haraka: Mta | undefined;
  const peer = (name: MtaName) => name === "postfix" ? postfix! : haraka!;
  try {
    postfix = POSTFIX ? await startPostfixMta(sink.port) : undefined;
    haraka = HARAKA ? await startHarakaMta(sink.port) : undefined;
    for (const spec of specs) {
      console.log(`cell: ${spec.size} B × ${spec.sessions} sessions × ${spec.recipients} rcpt`);
      const row: Partial<Row> = {};
      for (const name of MTAS as readonly MtaName[]) {
        const mta = name === "empath" ? await startEmpath(sink.port) : peer(name);
        try {
          const rate = measured.get(key(name, spec)) ?? guess(name, spec);
          const r = await runCell(mta, sink, spec, {
            messages: messagesFor(name, spec, SECONDS),
            warmupMessages: quick ? 0 : Math.max(200, Math.round(messagesFor(name, spec, SECONDS) / 10)),
            latencyMessages: LAT_SECONDS > 0 ? Math.max(20, Math.round(rate * LAT_SECONDS)) : 0,
            ...wait,
          });
          measured.set(key(name, spec), r.e2eRate);
          row[name] = r;
          printCell(r);
          await appendJson(args.json, { kind: "cell", ...r });
        } finally {
          if (name === "empath") await mta.stop();
        }
      }
      results.push(row as Row);
      if (row.postfix) {
        console.log(`  ratio empath/postfix: ${(row.empath!.e2eRate / row.postfix.e2eRate).toFixed(2)}x`);
      }
      if (row.haraka) console.log(`  ratio empath/haraka: ${(row.empath!.e2eRate / row.haraka.e2eRate).toFixed(2)}x`);
    }

    if (DKIM_ROUNDS > 0 && !PACED_ONLY) {
      console.log(`DKIM cell: 4096 B × 20 sessions, unsigned / RSA-2048 / Ed25519, ${DKIM_ROUNDS} round(s)`);
      const spec = { size: 4096, sessions: 20, recipients: 1 };
      const dkim = await runDkimCell(sink, DKIM_ROUNDS, {
        messages: messagesFor("empath", spec, SECONDS),
        warmupMessages: quick ? 0 : 200,
        latencyMessages: 0,
        ...wait,
      }, async (variant, r) => {
        console.log(
          `  ${variant.padEnd(8)} e2e ${r.e2eRate.toFixed(0)} msg/s, cpu ${r.cpuMsPerMsg?.toFixed(2)} ms/msg`,
        );
        await appendJson(args.json, { kind: "dkim-cell", variant, ...r });
      });
      console.log(
        `  median over ${DKIM_ROUNDS}: unsigned ${dkim.unsignedRate.toFixed(0)}, RSA-2048 ${dkim.rsaRate.toFixed(0)} ` +
          `(${(100 * dkim.rsaRatio).toFixed(0)} %), Ed25519 ${dkim.ed25519Rate.toFixed(0)} ` +
          `(${(100 * dkim.ed25519Ratio).toFixed(0)} %) msg/s; target RSA ≥ 80 %: ${
            dkim.rsaRatio >= 0.8 ? "met" : "MISSED"
          }`,
      );
      await appendJson(args.json, { kind: "dkim", ...dkim, rounds: undefined });
    }

    // Accept latency at a fixed offered rate, while relaying.
    if (RATE > 0 && !DKIM_ONLY) {
      for (const name of MTAS as readonly MtaName[]) {
        const mta = name === "empath" ? await startEmpath(sink.port) : peer(name);
        try {
          const p = await pacedLatency(mta, sink, {
            rate: RATE,
            seconds: RATE_SECONDS,
            size: 4096,
            sessions: 20,
            warmupMessages: quick ? 0 : 500,
            ...wait,
          });
          paced.push(p);
          printPaced(p);
          await appendJson(args.json, { kind: "paced", ...p });
        } finally {
          if (name === "empath") await mta.stop();
        }
      }
    }
  } finally {
    await postfix?.stop();
    await haraka?.stop();
    await sink.stop();
  }

  console.log(
    "\nsummary (e2e = messages at the sink per second, first send to last arrival; accept = smtp-source's rate;\n" +
      "latency = accept latency p50/p99 in ms from a Deno client at the same size/sessions/recipients, flat out;\n" +
      "memory = Empath's peak RSS, Postfix's peak summed PSS; cpu = Empath daemon's user+system ms per message;\n" +
      "load = 1-min load average before/after the cell)",
  );
  console.log(table(
    [
      "size",
      "sess",
      "rcpt",
      "empath e2e",
      "accept",
      "lat p50/p99",
      "RSS MB",
      "cpu ms/msg",
      "postfix e2e",
      "accept",
      "lat p50/p99",
      "PSS MB",
      "ratio",
      ...(HARAKA ? ["haraka e2e", "PSS MB", "ratio"] : []),
      "load",
    ],
    results.map(({ empath: e, postfix: p, haraka: h }) => [
      e.size,
      e.sessions,
      e.recipients,
      e.e2eRate.toFixed(0),
      e.acceptRate.toFixed(0),
      fmtLat(e),
      e.peakRssMb.toFixed(0),
      e.cpuMsPerMsg?.toFixed(2) ?? "-",
      p ? p.e2eRate.toFixed(0) : "-",
      p ? p.acceptRate.toFixed(0) : "-",
      fmtLat(p),
      p ? p.peakRssMb.toFixed(0) : "-",
      p ? `${(e.e2eRate / p.e2eRate).toFixed(2)}x` : "-",
      ...(HARAKA
        ? [
          h ? h.e2eRate.toFixed(0) : "-",
          h ? h.peakRssMb.toFixed(0) : "-",
          h ? `${(e.e2eRate / h.e2eRate).toFixed(2)}x` : "-",
        ]
        : []),
      `${e.bg.load.toFixed(1)}/${(h ?? p ?? e).loadAfter.toFixed(1)}`,
    ]),
  ));
  const peak = Math.max(0, ...results.map((r) => r.empath.peakRssMb));
  if (results.length > 0) console.log(`empath peak RSS over all cells: ${peak.toFixed(0)} MB`);

  const t = targets(results, paced);
  console.log("\ntargets (issue #8, 2-core machine):");
  for (const x of t) {
    console.log(`  ${x.met === undefined ? "n/a   " : x.met ? "met   " : "MISSED"}  ${x.name}: ${x.measured}`);
  }
  const loadEnd = await loadAvgs();
  console.log(
    `load average at end: ${loadText(loadEnd)}; total ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  await appendJson(args.json, { kind: "targets", targets: t, loadEnd, peakRssMb: peak });
}

try {
  await main();
} catch (err) {
  console.error(err instanceof BenchSetupError ? `bench/matrix.ts: ${err.message}` : err);
  Deno.exit(1);
}
