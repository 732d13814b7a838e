/**
 * Accept benchmark: a real Empath daemon (subprocess, real disk spool, fsync on)
 * driven by Postfix's `smtp-source` for throughput, then by a Deno client that
 * measures per-message accept latency (MAIL FROM … final 250) at full load and at
 * a fixed offered rate.
 *
 *   deno task bench                       # defaults: 5000 msgs, 4 KB, 20 sessions
 *   deno run -A bench/accept.ts --messages 20000 --size 4096 --sessions 20 --backend file
 */
import { parseArgs } from "node:util";
import { startDaemon } from "../tests/helpers/daemon.ts";
import { RawSmtp } from "../tests/helpers/smtp_raw.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    messages: { type: "string", default: "5000" },
    size: { type: "string", default: "4096" },
    sessions: { type: "string", default: "20" },
    backend: { type: "string", default: "kv" },
    rate: { type: "string", default: "200" },
  },
}).values;
const MESSAGES = Number(args.messages);
const SIZE = Number(args.size);
const SESSIONS = Number(args.sessions);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function body(size: number): string {
  const line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01234\r\n"; // 80 octets
  return "Subject: bench\r\n\r\n" + line.repeat(Math.ceil(size / line.length)).slice(0, size - 2) + "\r\n";
}

async function smtpSource(port: number): Promise<{ seconds: number; rate: number }> {
  const t0 = performance.now();
  const out = await new Deno.Command("smtp-source", {
    args: [
      "-d",
      "-s",
      String(SESSIONS),
      "-m",
      String(MESSAGES),
      "-l",
      String(SIZE),
      "-f",
      "bench@example.com",
      "-t",
      "sink@example.net",
      `127.0.0.1:${port}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  if (out.code !== 0) throw new Error(`smtp-source failed: ${new TextDecoder().decode(out.stderr)}`);
  return { seconds, rate: MESSAGES / seconds };
}

/** Sends `count` messages over `sessions` connections; `interval` ms between sends per session (0 = flat out). */
async function latencyRun(port: number, count: number, sessions: number, intervalMs: number) {
  const latencies: number[] = [];
  const data = body(SIZE);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: sessions }, async (_, s) => {
    const c = await RawSmtp.connect(port);
    await c.reply();
    await c.cmd("EHLO bench.test");
    let due = performance.now() + (intervalMs * s) / sessions;
    while (next < count) {
      next++;
      if (intervalMs > 0) {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        due += intervalMs;
      }
      const start = performance.now();
      await c.cmd("MAIL FROM:<bench@example.com>");
      await c.cmd("RCPT TO:<sink@example.net>");
      await c.cmd("DATA");
      await c.send(data);
      const r = await c.cmd(".");
      if (r.code !== 250) throw new Error(r.text);
      latencies.push(performance.now() - start);
    }
    await c.cmd("QUIT").catch(() => {});
    c.close();
  }));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    rate: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1)!,
  };
}

async function rssKb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

const d = await startDaemon({ toml: `[queue]\nbackend = "${args.backend}"\n`, logLevel: "info" });
try {
  console.log(`empath accept benchmark: ${MESSAGES} msgs of ${SIZE} B, ${SESSIONS} sessions, backend ${args.backend}`);
  console.log(
    `machine: ${navigator.hardwareConcurrency} cores, ${Deno.build.os}/${Deno.build.arch}, deno ${Deno.version.deno}`,
  );
  // Warm-up so JIT and file caches are hot.
  await latencyRun(d.port, 300, SESSIONS, 0);
  const src = await smtpSource(d.port);
  console.log(`smtp-source:        ${src.rate.toFixed(0)} msg/s (${src.seconds.toFixed(2)} s)`);
  const full = await latencyRun(d.port, Math.min(MESSAGES, 3000), SESSIONS, 0);
  console.log(
    `deno client, full:  ${full.rate.toFixed(0)} msg/s, accept latency p50 ${full.p50.toFixed(1)} ms, p99 ${
      full.p99.toFixed(1)
    } ms, max ${full.max.toFixed(1)} ms`,
  );
  const rate = Number(args.rate);
  const paced = await latencyRun(d.port, rate * 5, SESSIONS, (1000 * SESSIONS) / rate);
  console.log(
    `deno client, ${rate}/s: ${paced.rate.toFixed(0)} msg/s, accept latency p50 ${paced.p50.toFixed(1)} ms, p99 ${
      paced.p99.toFixed(1)
    } ms`,
  );
  console.log(`daemon peak RSS:    ${((await rssKb(d.child.pid)) / 1024).toFixed(0)} MB`);
} finally {
  await d.stop();
  await d.cleanup();
}
