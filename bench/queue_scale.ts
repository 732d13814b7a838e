/**
 * Queue scale benchmark (issue #8, "Load and scale"): a real daemon holds N queued
 * messages, then drains them to `smtp-sink`.
 *
 * Per queue size N (default 1,000, 10,000 and 100,000), backend (kv, file) and drain
 * mode:
 *
 * - `retry` (the outage): example.net's `mx_override` is a closed loopback port;
 *   `smtp-source` sends N small messages over parallel sessions, each gets one attempt
 *   (ECONNREFUSED) and waits for a retry 6 h later (`delivery.retry.base_delay`); the
 *   circuit breaker never opens (`failures` = 10^9) so nothing is held back by it
 *   when the destination returns. Then `smtp-sink` starts on that port and the
 *   operator runs `empathctl queue retry --all`.
 * - `hold` (delivery engine alone): `empathctl queue freeze` holds everything before
 *   the fill; the sink starts, and `empathctl queue unfreeze` releases the queue.
 *   No record is rewritten before delivery, so this is the engine's own drain rate.
 *
 * Measured: fill rate; at rest the daemon's VmRSS and VmHWM (/proc/<pid>/status) with
 * a breakdown (anonymous/file pages, V8 heap and external memory from /metrics; with
 * `--settle S` once more after S seconds idle),
 * `queue stats` as a control request and through the real `empathctl` (process start
 * included; `system ping` through the CLI gives the CLI's fixed cost); the drain rate
 * = N / (command start → queue empty, every message at the sink), the rate per 10 %
 * of the messages, and the daemon's CPU time per message.
 *
 * The daemon starts at log level info (the harness needs it) and is switched to
 * `warning` (`--log-level`) so 10^5 messages do not fill the harness with log lines.
 *
 *   flock /tmp/empath-bench.lock deno run -A bench/queue_scale.ts --backends kv
 *   deno run -A bench/queue_scale.ts --sizes 1000 --modes hold --json results.jsonl
 */
import { benchArgs } from "./lib/cli_args.ts";
import {
  appendJson,
  type BenchDaemon,
  fmtMs,
  loadText,
  machineInfo,
  machineLine,
  median,
  type MemoryBreakdown,
  memoryBreakdown,
  memoryText,
  procStat,
  RssSampler,
  smtpSource,
  startBenchDaemon,
  startSink,
  timeCli,
  track,
  until,
} from "./lib/mod.ts";
import { freePort } from "../testing/net.ts";

const args = benchArgs({
  usage: "deno run -A bench/queue_scale.ts [options]",
  options: {
    sizes: { type: "string", default: "1000,10000,100000", check: "numbers", help: "queue sizes (messages)" },
    backends: { type: "string", default: "kv,file", arg: "kv,file", help: "queue backends" },
    modes: { type: "string", default: "retry,hold", arg: "retry,hold", help: "drain modes" },
    "msg-size": { type: "string", default: "1000", check: "number", help: "message size (octets)" },
    sessions: { type: "string", default: "20", check: "number", help: "parallel smtp-source sessions for the fill" },
    concurrency: { type: "string", default: "100", check: "number", help: "delivery.concurrency" },
    settle: {
      type: "string",
      default: "0",
      check: "number",
      help: "measure memory again after this many idle seconds",
    },
    "drain-limit": {
      type: "string",
      default: "1800",
      check: "number",
      help: "give up a drain after this many seconds",
    },
    rest: { type: "string", default: "3", check: "number", help: "seconds at rest before measuring" },
    "log-level": { type: "string", default: "warning", arg: "LEVEL", help: "the daemon's log level once started" },
    json: { type: "string", arg: "FILE", help: "append the results as JSON lines" },
    quiet: { type: "boolean", help: "no progress lines" },
  },
}).values;
const SIZES = args.sizes.split(",").map(Number).filter((n) => n > 0);
const BACKENDS = args.backends.split(",").filter((b) => b === "kv" || b === "file");
const MODES = args.modes.split(",").filter((m): m is Mode => m === "retry" || m === "hold");
const MSG_SIZE = Number(args["msg-size"]);
const SESSIONS = Number(args.sessions);
const SETTLE_S = Number(args.settle);
const REST_S = Number(args.rest);
const DRAIN_LIMIT_S = Number(args["drain-limit"]);
type Mode = "retry" | "hold";

interface Stats {
  counts: Record<"queued" | "delivering" | "deferred" | "frozen" | "delivered" | "failed", number>;
  total: number;
}

/** Progress on stderr (long phases take minutes at 10^5 messages). */
const progress = (text: string) => {
  if (!args.quiet) console.error(`  … ${new Date().toISOString().slice(11, 19)} ${text}`);
};

function config(backend: string, closedPort: number): string {
  return `
[smtp]
max_connections_per_ip = ${SESSIONS + 20}

[queue]
backend = "${backend}"

[delivery]
concurrency = ${Number(args.concurrency)}
tls = "none"

[delivery.retry]
base_delay = "6h"
max_delay = "6h"

[delivery.circuit_breaker]
failures = 1000000000

[delivery.domains."example.net"]
mx_override = "127.0.0.1:${closedPort}"

[dsn]
delay_warning = "0"
`;
}

/** Runs the CLI and fails loudly on a non-zero exit. */
async function cli(bd: BenchDaemon, argv: string[]) {
  const r = await timeCli(bd.socket, argv);
  if (r.code !== 0) throw new Error(`empathctl ${argv.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** One size × backend × mode: fill, measure at rest, drain. */
async function runOne(n: number, backend: string, mode: Mode) {
  const port = freePort();
  const loadAtStart = await loadText();
  const bd = await startBenchDaemon(config(backend, port), args["log-level"]);
  const stats = async () => (await bd.request<Stats>("queue.stats")).result;
  try {
    const base = await procStat(bd.pid);
    const baseMem = await memoryBreakdown(bd.pid, bd.d.portOf("http"));
    if (mode === "hold") await cli(bd, ["queue", "freeze"]);

    // 1. Fill.
    progress(`${backend}/${mode}: filling ${n}`);
    const fillSampler = new RssSampler(bd.pid, 200);
    const fillCpu0 = base.cpuSeconds;
    const t0 = performance.now();
    const src = await smtpSource({ port: bd.d.port, messages: n, sessions: SESSIONS, size: MSG_SIZE });
    if (src.code !== 0) throw new Error(`smtp-source failed (${src.code}): ${src.stderr}`);
    const acceptS = (src.at - t0) / 1000;
    // Every message had its first attempt (retry) or is held (hold).
    const waiting = mode === "retry" ? "deferred" : "queued";
    let last: Stats | undefined;
    await until(
      async () => {
        const s = last = await stats();
        return s.counts[waiting] >= n && s.counts.delivering === 0;
      },
      900_000,
      `${n} messages ${waiting}`,
      250,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; last stats ${JSON.stringify(last)}`);
    });
    const settledS = (performance.now() - t0) / 1000;
    const fillPeakKb = fillSampler.stop();
    const afterFill = await procStat(bd.pid);
    const fillCpuMs = ((afterFill.cpuSeconds - fillCpu0) * 1000) / n;
    const loadFill = await loadText();

    // 2. At rest: memory and control-plane timings.
    await new Promise((r) => setTimeout(r, REST_S * 1000));
    const rest = await procStat(bd.pid);
    const restMem = await memoryBreakdown(bd.pid, bd.d.portOf("http"));
    let settledMem: MemoryBreakdown | undefined;
    if (SETTLE_S > 0) {
      progress(`${backend}/${mode}: idle for ${SETTLE_S} s (V8's memory reducer starts after 30 s idle)`);
      await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
      settledMem = await memoryBreakdown(bd.pid, bd.d.portOf("http"));
    }
    const reqMs: number[] = [];
    for (let i = 0; i < 5; i++) reqMs.push((await bd.request("queue.stats")).ms);
    const cliMs: number[] = [];
    let statsText = "";
    for (let i = 0; i < 3; i++) {
      const r = await cli(bd, ["queue", "stats"]);
      cliMs.push(r.ms);
      statsText = r.stdout;
    }
    const pingMs: number[] = [];
    for (let i = 0; i < 3; i++) pingMs.push((await cli(bd, ["system", "ping"])).ms);
    const summaryMs = (await bd.request("queue.summary")).ms;
    const statusMs = (await bd.request("system.status")).ms;
    const loadRest = await loadText();

    // 3. Drain: the destination is up, the operator releases the queue.
    const sink = await startSink(port);
    const forgetSink = track("smtp-sink", () => sink.stop());
    progress(`${backend}/${mode}: draining ${n}`);
    const drainSampler = new RssSampler(bd.pid, 200);
    const cpu0 = (await procStat(bd.pid)).cpuSeconds;
    const d0 = performance.now();
    const command = mode === "retry" ? ["queue", "retry", "--all"] : ["queue", "unfreeze"];
    let commandDone: { s: number; out: string } | undefined;
    const running = cli(bd, [...command, "--timeout", "1800"]).then((r) => {
      commandDone = { s: (performance.now() - d0) / 1000, out: r.stdout.trim() };
    });
    const marks: number[] = []; // ms after d0 at which 10 %, 20 %, … had arrived
    let nextReport = d0 + 30_000;
    let cutShort = false;
    while (sink.count < n) {
      if (performance.now() > d0 + DRAIN_LIMIT_S * 1000) {
        cutShort = true; // report what was drained so far
        progress(`stopping the drain after ${DRAIN_LIMIT_S} s (--drain-limit) at ${sink.count}/${n}`);
        break;
      }
      while (marks.length < 10 && sink.count >= Math.ceil((n * (marks.length + 1)) / 10)) {
        marks.push(performance.now() - d0);
      }
      if (performance.now() > nextReport) {
        progress(`${sink.count}/${n} at the sink${commandDone ? "" : `, ${command.join(" ")} still running`}`);
        nextReport += 30_000;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const delivered = Math.min(n, sink.count);
    while (!cutShort && marks.length < 10) marks.push(performance.now() - d0);
    const atSinkS = (performance.now() - d0) / 1000;
    if (!cutShort) await until(async () => (await stats()).total === 0, 300_000, "an empty queue", 100);
    const drainS = (performance.now() - d0) / 1000;
    const cpu1 = (await procStat(bd.pid)).cpuSeconds;
    const drainPeakKb = drainSampler.stop();
    if (cutShort) running.catch(() => {}); // the daemon stops under it
    else await running;
    const end = await procStat(bd.pid);
    const loadDrain = await loadText();
    forgetSink();
    await sink.stop();

    const windowRates = marks.map((m, i) => Math.round((n / 10) / ((m - (marks[i - 1] ?? 0)) / 1000)));
    const result = {
      bench: "queue_scale",
      backend,
      mode,
      n,
      msgSize: MSG_SIZE,
      sessions: SESSIONS,
      loadAtStart,
      fill: {
        acceptRate: n / acceptS,
        acceptS,
        settledS,
        cpuMsPerMsg: fillCpuMs,
        peakRssMb: fillPeakKb / 1024,
        load: loadFill,
      },
      rest: {
        rssMb: rest.rssKb / 1024,
        hwmMb: rest.hwmKb / 1024,
        rssAfterFillMb: afterFill.rssKb / 1024,
        baseRssMb: base.rssKb / 1024,
        memory: { empty: baseMem, rest: restMem, settled: settledMem, settleSeconds: SETTLE_S },
        statsRequestMs: { median: median(reqMs), max: Math.max(...reqMs) },
        statsCliMs: { median: median(cliMs), max: Math.max(...cliMs) },
        pingCliMs: median(pingMs),
        summaryRequestMs: summaryMs,
        statusRequestMs: statusMs,
        load: loadRest,
        statsText,
      },
      drain: {
        command: `empathctl ${command.join(" ")}`,
        rate: delivered / drainS,
        delivered,
        cutShort,
        seconds: drainS,
        atSinkS,
        commandS: commandDone?.s ?? NaN,
        commandOut: commandDone?.out ?? "",
        windowRates,
        cpuMsPerMsg: ((cpu1 - cpu0) * 1000) / Math.max(1, delivered),
        peakRssMb: drainPeakKb / 1024,
        hwmMb: end.hwmKb / 1024,
        load: loadDrain,
      },
    };
    await appendJson(args.json, result);
    return result;
  } finally {
    await bd.stop();
  }
}

type Result = Awaited<ReturnType<typeof runOne>>;

function print(r: Result) {
  const f = (x: number, d = 0) => x.toFixed(d);
  console.log(`\n== ${r.n} messages of ${r.msgSize} B, backend ${r.backend}, drain by ${r.drain.command}`);
  console.log(`        load at start ${r.loadAtStart}`);
  console.log(
    `fill:   accepted at ${f(r.fill.acceptRate)} msg/s (${f(r.fill.acceptS, 1)} s), all ${
      r.mode === "retry" ? "deferred" : "held"
    } after ${f(r.fill.settledS, 1)} s; daemon CPU ${f(r.fill.cpuMsPerMsg, 2)} ms/msg; peak RSS ${
      f(r.fill.peakRssMb)
    } MB   [load ${r.fill.load}]`,
  );
  console.log(
    `rest:   VmRSS ${f(r.rest.rssMb)} MB (right after the fill ${f(r.rest.rssAfterFillMb)} MB, empty daemon ${
      f(r.rest.baseRssMb)
    } MB), VmHWM ${f(r.rest.hwmMb)} MB   [load ${r.rest.load}]`,
  );
  console.log(`        empty daemon: ${memoryText(r.rest.memory.empty)}`);
  console.log(`        at rest:      ${memoryText(r.rest.memory.rest)}`);
  if (r.rest.memory.settled) {
    console.log(`        idle ${r.rest.memory.settleSeconds} s:    ${memoryText(r.rest.memory.settled)}`);
  }
  console.log(
    `ctl:    queue stats request ${fmtMs(r.rest.statsRequestMs.median)} (max ${fmtMs(r.rest.statsRequestMs.max)}); ` +
      `empathctl queue stats ${fmtMs(r.rest.statsCliMs.median)} (max ${fmtMs(r.rest.statsCliMs.max)}); ` +
      `empathctl system ping ${fmtMs(r.rest.pingCliMs)}; requests: queue summary ${
        fmtMs(r.rest.summaryRequestMs)
      }, system status ${fmtMs(r.rest.statusRequestMs)}`,
  );
  console.log(
    r.drain.cutShort
      ? `drain:  ${f(r.drain.rate)} msg/s: STOPPED by --drain-limit after ${
        f(r.drain.seconds)
      } s with ${r.drain.delivered}/${r.n} at the sink; ${r.drain.command} ${
        r.drain.commandOut ? "had returned" : "was still running"
      }`
      : `drain:  ${f(r.drain.rate)} msg/s (${f(r.drain.seconds, 1)} s to an empty queue); the command returned after ${
        f(r.drain.commandS, 1)
      } s ("${r.drain.commandOut}")`,
  );
  console.log(
    `        per 10 %: ${r.drain.windowRates.join(" ")} msg/s; daemon CPU ${f(r.drain.cpuMsPerMsg, 2)} ms/msg; ` +
      `peak RSS ${f(r.drain.peakRssMb)} MB, VmHWM ${f(r.drain.hwmMb)} MB   [load ${r.drain.load}]`,
  );
  console.log(r.rest.statsText.trimEnd().split("\n").map((l) => `        | ${l}`).join("\n"));
}

console.log(
  `queue scale benchmark: sizes ${SIZES.join(", ")}; backends ${BACKENDS.join(", ")}; drain modes ${
    MODES.join(", ")
  }; ${MSG_SIZE} B messages over ${SESSIONS} sessions`,
);
console.log(machineLine(await machineInfo()));
const all: Result[] = [];
for (const backend of BACKENDS) {
  for (const mode of MODES) {
    for (const n of SIZES) {
      const r = await runOne(n, backend, mode);
      print(r);
      all.push(r);
    }
  }
}
console.log("\nsummary (load average at the end of each drain in brackets):");
for (const r of all) {
  console.log(
    `  ${r.backend.padEnd(4)} ${r.mode.padEnd(5)} ${String(r.n).padStart(6)}: drain ${
      r.drain.rate.toFixed(0).padStart(5)
    } msg/s${r.drain.cutShort ? ` (stopped at ${r.drain.delivered})` : ""}, CPU ${
      r.drain.cpuMsPerMsg.toFixed(2)
    } ms/msg; RSS at rest ${r.rest.rssMb.toFixed(0)} MB; ` +
      `queue stats ${fmtMs(r.rest.statsRequestMs.median)} (CLI ${fmtMs(r.rest.statsCliMs.median)})  [${r.drain.load}]`,
  );
}
