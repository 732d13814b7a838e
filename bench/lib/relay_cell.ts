/**
 * One cell of the relay benchmark: `smtp-source` → MTA → `smtp-sink` for a message
 * size, a session count and a recipient count, then the same load from a Deno client
 * that times every transaction (accept latency). Used by bench/relay.ts (one cell)
 * and bench/matrix.ts (all cells).
 *
 * Both MTAs run with their default delivery concurrency (Empath: 100 deliveries, 20
 * connections per destination; Postfix: 20 per destination) and fsync on (Empath's
 * default; Postfix always fsyncs its queue files).
 * @module
 */
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { loadRun } from "./client.ts";
import { freePort } from "../../testing/net.ts";
import { BenchSetupError, sleep, track, within } from "./common.ts";
import { type Sink, spawnSmtpSource } from "./load_tools.ts";
import { type Background, loadAvg, procStat, treePssKb, waitQuiet } from "./machine.ts";
import { startPostfix } from "./postfix.ts";

/** Message size, parallel sessions and recipients per message. */
export interface CellSpec {
  size: number;
  sessions: number;
  recipients: number;
}

/** An MTA under test, as a cell sees it. */
export interface Mta {
  name: "empath" | "postfix" | "haraka";
  port: number;
  /** Peak memory while `fn` runs, in KB. */
  measureMemory<T>(fn: () => Promise<T>): Promise<{ value: T; peakKb: number }>;
  /** CPU seconds used so far (Empath and Haraka: one process). */
  cpuSeconds?(): Promise<number>;
  stop(): Promise<void>;
}

/** The relay config the benchmarks give Empath: everything to the sink, no TLS, defaults otherwise. */
export function empathRelayToml(sinkPort: number): string {
  return `[delivery]\nrelay_host = "127.0.0.1:${sinkPort}"\ntls = "none"\n`;
}

/**
 * Starts Empath (a fresh daemon with its own temp dir) relaying to the sink; once it is up,
 * its output is drained without being kept (`daemon.outputTail()` has the end). Peak RSS is
 * the daemon's VmHWM. `stop` sends SIGTERM, waits up to 40 s (the delivery grace period is
 * 30 s), then SIGKILLs, and removes the temp dir. `denoFlags` go to `deno run` before
 * main.ts (e.g. `--cpu-prof`).
 */
export async function startEmpath(
  sinkPort: number,
  extraToml = "",
  denoFlags: string[] = [],
): Promise<Mta & { daemon: TestDaemon }> {
  const d = await startDaemon({
    toml: empathRelayToml(sinkPort) + extraToml,
    logLevel: "info",
    permissions: denoFlags,
    // The daemon logs a line or two per message at info (as in production); decoding and
    // splitting them cost the harness ~15 % of a core, so once it is up they are drained raw.
    output: "discard",
  });
  const pid = d.child.pid;
  const stop = async () => {
    untrack();
    if (await within(d.stop(), 40_000) === undefined) {
      console.error(`empath (pid ${pid}) did not exit 40 s after SIGTERM; killing it; its last output:`);
      console.error(d.outputTail().slice(-4000));
      await d.kill();
    }
    await d.cleanup();
  };
  const untrack = track(`empath (pid ${pid}, ${d.dir})`, stop);
  return {
    name: "empath",
    port: d.port,
    daemon: d,
    async measureMemory(fn) {
      const value = await fn();
      return { value, peakKb: (await procStat(pid)).hwmKb };
    },
    async cpuSeconds() {
      return (await procStat(pid)).cpuSeconds;
    },
    stop,
  };
}

/**
 * Starts a private Postfix relaying to the sink. Peak memory is the sum of the PSS of the
 * master and all its children, sampled once a second while a measurement runs.
 */
export async function startPostfixMta(sinkPort: number): Promise<Mta> {
  const pf = await startPostfix(freePort(), sinkPort);
  return {
    name: "postfix",
    port: pf.port,
    async measureMemory(fn) {
      let peakKb = 0;
      let stopped = false;
      const sampler = (async () => {
        while (!stopped && pf.masterPid > 0) {
          peakKb = Math.max(peakKb, await treePssKb(pf.masterPid));
          for (let i = 0; i < 10 && !stopped; i++) await sleep(100);
        }
      })();
      try {
        const value = await fn();
        return { value, peakKb };
      } finally {
        stopped = true;
        await sampler;
      }
    },
    stop: () => pf.stop(),
  };
}

/** Accept latency of a Deno client run, ms. */
export interface LatencySummary {
  sent: number;
  errors: number;
  rate: number;
  p50: number;
  p99: number;
  max: number;
}

/** What one cell measured for one MTA. */
export interface CellResult extends CellSpec {
  mta: string;
  messages: number;
  /** Messages at the sink / time from the first send to the last arrival. */
  e2eRate: number;
  /** Messages / time until smtp-source finished (all accepted). */
  acceptRate: number;
  seconds: number;
  /** Empath: the daemon's VmHWM; Postfix: peak of the summed PSS of its processes. */
  peakRssMb: number;
  /** Daemon CPU per message relayed (Empath). */
  cpuMsPerMsg?: number;
  /** Flat-out accept latency from the Deno client, same size/sessions/recipients. */
  latency?: LatencySummary;
  /** Warm-up messages relayed before the measurement (not counted). */
  warmupMessages: number;
  /** Transactions the sink saw beyond those sent (should be 0: one per message). */
  sinkExtra: number;
  bg: Background;
  loadAfter: number;
}

/** Options for {@link runCell}. */
export interface CellOptions {
  messages: number;
  /** Messages relayed first and not counted (JIT, caches, pooled connections warm); default 0. */
  warmupMessages?: number;
  /** Messages for the latency phase (0 skips it). */
  latencyMessages: number;
  /** Wait for a quiet machine before starting (max % CPU used by others). */
  maxBusy: number;
  maxWaitMs?: number;
  /** Length of the CPU sample that decides whether the machine is quiet. */
  sampleMs?: number;
  /** Fail when nothing reaches the sink for this long (default 30 s). */
  stallMs?: number;
}

/**
 * Sends `messages` with smtp-source and waits until all of them reached the sink.
 * Fails fast when smtp-source fails, and after `stallMs` without progress at the sink;
 * smtp-source is killed on every failure.
 */
async function relayRun(mta: Mta, sink: Sink, spec: CellSpec, messages: number, stallMs: number) {
  const base = sink.count;
  const t0 = performance.now();
  const source = spawnSmtpSource({
    port: mta.port,
    messages,
    sessions: spec.sessions,
    size: spec.size,
    recipients: spec.recipients,
  });
  try {
    const sourceFailed = source.done.then((r) => {
      if (r.code !== 0) {
        throw new BenchSetupError("start_failed", `${mta.name}: smtp-source exited with ${r.code}: ${r.stderr}`);
      }
      return new Promise<never>(() => {}); // succeeded: the sink decides
    });
    await Promise.race([sink.waitFor(base + messages, Math.max(600_000, messages * 100), stallMs), sourceFailed]);
    const t1 = performance.now();
    const src = await within(source.done, 30_000);
    if (!src) throw new BenchSetupError("stalled", `${mta.name}: smtp-source still running after the sink got all`);
    if (src.code !== 0) throw new BenchSetupError("start_failed", `${mta.name}: smtp-source failed: ${src.stderr}`);
    return { t0, t1, srcAt: src.at };
  } catch (err) {
    await source.kill();
    throw err;
  }
}

/** Runs one cell against a running MTA that relays to `sink`. */
export async function runCell(mta: Mta, sink: Sink, spec: CellSpec, o: CellOptions): Promise<CellResult> {
  const bg = await waitQuiet(o.maxBusy, o.maxWaitMs ?? 30_000, o.sampleMs ?? 1000);
  const stallMs = o.stallMs ?? 30_000;
  if (o.warmupMessages) await relayRun(mta, sink, spec, o.warmupMessages, stallMs);
  const base = sink.count;
  const cpu0 = await mta.cpuSeconds?.();
  const { value: run, peakKb } = await mta.measureMemory(async () => {
    const r = await relayRun(mta, sink, spec, o.messages, stallMs);
    const cpu1 = await mta.cpuSeconds?.();
    let latency: LatencySummary | undefined;
    if (o.latencyMessages > 0) {
      const before = sink.count;
      const l = await loadRun({
        port: mta.port,
        messages: o.latencyMessages,
        sessions: spec.sessions,
        size: spec.size,
        recipients: spec.recipients,
      });
      latency = { sent: l.sent, errors: l.errors, rate: l.rate, p50: l.p50, p99: l.p99, max: l.max };
      if (l.errors > 0) console.error(`${mta.name}: ${l.errors} errors in the latency run, first: ${l.firstError}`);
      // Let the relay finish before the next cell.
      await sink.waitFor(before + l.sent, 600_000, stallMs);
    }
    return { ...r, cpu: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined, latency };
  });
  // A split or repeated delivery would show up as extra transactions at the sink.
  await sleep(200);
  const sinkExtra = sink.count - base - o.messages - (run.latency?.sent ?? 0);
  if (sinkExtra !== 0) console.error(`${mta.name}: the sink saw ${sinkExtra} transactions more than messages sent`);
  const seconds = (run.t1 - run.t0) / 1000;
  return {
    mta: mta.name,
    ...spec,
    messages: o.messages,
    e2eRate: o.messages / seconds,
    acceptRate: o.messages / ((run.srcAt - run.t0) / 1000),
    seconds,
    peakRssMb: peakKb / 1024,
    cpuMsPerMsg: run.cpu !== undefined ? (1000 * run.cpu) / o.messages : undefined,
    latency: run.latency,
    warmupMessages: o.warmupMessages ?? 0,
    sinkExtra,
    bg,
    loadAfter: await loadAvg(),
  };
}

/** Options for {@link pacedLatency}. */
export interface PacedOptions {
  /** Offered rate, messages per second over all sessions. */
  rate: number;
  seconds: number;
  size: number;
  sessions: number;
  /** Messages sent flat out (same size and sessions) and relayed before the paced run; default 0. */
  warmupMessages?: number;
  maxBusy: number;
  maxWaitMs?: number;
  sampleMs?: number;
}

/** What {@link pacedLatency} measured. */
export interface PacedResult extends PacedOptions {
  mta: string;
  sent: number;
  errors: number;
  firstError?: string;
  /** Achieved rate. */
  achieved: number;
  p50: number;
  p99: number;
  max: number;
  /** p99 counted from the scheduled send time (includes waiting behind a slow reply). */
  p99FromSchedule: number;
  bg: Background;
  loadAfter: number;
}

/** Accept latency at a fixed offered rate (e.g. 200 msg/s) while the MTA relays everything to the sink. */
export async function pacedLatency(mta: Mta, sink: Sink, o: PacedOptions): Promise<PacedResult> {
  const bg = await waitQuiet(o.maxBusy, o.maxWaitMs ?? 30_000, o.sampleMs ?? 1000);
  if (o.warmupMessages) {
    const before = sink.count;
    const w = await loadRun({ port: mta.port, messages: o.warmupMessages, sessions: o.sessions, size: o.size });
    await sink.waitFor(before + w.sent, 600_000, 30_000);
  }
  const before = sink.count;
  const l = await loadRun({
    port: mta.port,
    messages: Math.round(o.rate * o.seconds),
    sessions: o.sessions,
    size: o.size,
    rate: o.rate,
  });
  await sink.waitFor(before + l.sent, 600_000, 30_000);
  return {
    mta: mta.name,
    ...o,
    sent: l.sent,
    errors: l.errors,
    firstError: l.firstError,
    achieved: l.rate,
    p50: l.p50,
    p99: l.p99,
    max: l.max,
    p99FromSchedule: l.p99FromSchedule ?? NaN,
    bg,
    loadAfter: await loadAvg(),
  };
}
