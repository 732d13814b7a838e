/**
 * Accept benchmark: a real Empath daemon (subprocess, real disk spool, fsync on,
 * delivery off so messages stay queued) driven by Postfix's `smtp-source` for
 * throughput, then by a Deno client that measures per-message accept latency
 * (MAIL FROM … final 250) at full load and at a fixed offered rate.
 *
 *   deno task bench                       # defaults: 5000 msgs, 4 KB, 20 sessions
 *   deno run -A bench/accept.ts --messages 20000 --size 4096 --sessions 20 --backend file
 * @module
 */
import { benchArgs } from "./lib/cli_args.ts";
import { startDaemon } from "../testing/daemon.ts";
import {
  BenchSetupError,
  loadAvgs,
  loadRun,
  machineInfo,
  machineLine,
  procStat,
  requireLoadTools,
  smtpSource,
  stopAllOnSignal,
  track,
} from "./lib/mod.ts";

const args = benchArgs({
  usage: "deno run -A bench/accept.ts [options]",
  options: {
    messages: { type: "string", default: "5000", check: "number", help: "messages to send" },
    size: { type: "string", default: "4096", check: "number", help: "message size (octets)" },
    sessions: { type: "string", default: "20", check: "number", help: "parallel sessions" },
    backend: { type: "string", default: "kv", arg: "kv|file", help: "queue backend" },
    rate: { type: "string", default: "200", check: "number", help: "offered rate of the paced latency run (msg/s)" },
  },
}).values;
const MESSAGES = Number(args.messages);
const SIZE = Number(args.size);
const SESSIONS = Number(args.sessions);
const RATE = Number(args.rate);

async function main(): Promise<void> {
  requireLoadTools();
  stopAllOnSignal();
  const d = await startDaemon({ toml: `[queue]\nbackend = "${args.backend}"\n`, logLevel: "info" });
  const stop = async () => {
    untrack();
    await d.stop();
    await d.cleanup();
  };
  const untrack = track(`empath (pid ${d.child.pid})`, stop);
  try {
    console.log(
      `empath accept benchmark: ${MESSAGES} msgs of ${SIZE} B, ${SESSIONS} sessions, backend ${args.backend}`,
    );
    console.log(machineLine(await machineInfo()));
    console.log(`load average at start: ${(await loadAvgs()).join(" ")}`);
    // Warm-up so JIT and file caches are hot.
    await loadRun({ port: d.port, messages: 300, sessions: SESSIONS, size: SIZE });
    const t0 = performance.now();
    const src = await smtpSource({ port: d.port, messages: MESSAGES, sessions: SESSIONS, size: SIZE });
    if (src.code !== 0) throw new Error(`smtp-source failed: ${src.stderr}`);
    const seconds = (src.at - t0) / 1000;
    console.log(`smtp-source:        ${(MESSAGES / seconds).toFixed(0)} msg/s (${seconds.toFixed(2)} s)`);
    const full = await loadRun({ port: d.port, messages: Math.min(MESSAGES, 3000), sessions: SESSIONS, size: SIZE });
    console.log(
      `deno client, full:  ${full.rate.toFixed(0)} msg/s, accept latency p50 ${full.p50.toFixed(1)} ms, p99 ${
        full.p99.toFixed(1)
      } ms, max ${full.max.toFixed(1)} ms${full.errors ? `, ${full.errors} errors (${full.firstError})` : ""}`,
    );
    const paced = await loadRun({ port: d.port, messages: RATE * 5, sessions: SESSIONS, size: SIZE, rate: RATE });
    console.log(
      `deno client, ${RATE}/s: ${paced.rate.toFixed(0)} msg/s, accept latency p50 ${paced.p50.toFixed(1)} ms, p99 ${
        paced.p99.toFixed(1)
      } ms${paced.errors ? `, ${paced.errors} errors (${paced.firstError})` : ""}`,
    );
    console.log(`daemon peak RSS:    ${((await procStat(d.child.pid)).hwmKb / 1024).toFixed(0)} MB`);
    console.log(`load average at end: ${(await loadAvgs()).join(" ")}`);
  } finally {
    await stop();
  }
}

try {
  await main();
} catch (err) {
  console.error(err instanceof BenchSetupError ? `bench/accept.ts: ${err.message}` : err);
  Deno.exit(1);
}
