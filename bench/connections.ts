/**
 * Many connections benchmark (issue #8, "Load and scale"): 2,000 concurrent idle SMTP
 * sessions plus slow ("slowloris") clients against a real daemon, with a normal sender
 * measured alongside.
 *
 * 1. baseline: a normal sender alone, flat out (4 sessions) and at an offered rate
 *    (100 msg/s over 4 sessions): messages/s, accept latency (MAIL FROM … final 250),
 *    time to the 220 greeting of its new sessions;
 * 2. 2,000 idle sessions (connected, EHLO said, then silent); the daemon's RSS per
 *    session; `smtp connections` through the control socket; the normal sender again;
 * 3. slow clients (`--slow` of each kind, see lib/slow_clients.ts) on top of the
 *    idle sessions; the normal sender again;
 * 4. everyone is watched until cut off or `--window` seconds: how long until the
 *    daemon closed each kind of client and with which reply.
 *
 * The bench config raises `smtp.max_connections` and `max_connections_per_ip` (every
 * client is 127.0.0.1) and uses SHORT timeouts so the run is quick:
 * `smtp.timeouts.command` = `--timeout` (default 20s; the default config has 5m) and
 * `data_block` the same (default 3m). Slow clients drip a byte every `--drip` seconds.
 *
 *   flock /tmp/empath-bench.lock deno run -A bench/connections.ts
 *   deno run -A bench/connections.ts --idle 200 --slow 3 --timeout 5s --drip 2 --window 20
 */
import { benchArgs } from "./lib/cli_args.ts";
import { parseDuration } from "../src/config/units.ts";
import {
  appendJson,
  type BenchDaemon,
  loadText,
  machineInfo,
  machineLine,
  openSession,
  percentile,
  procStat,
  SLOW_KINDS,
  type SlowClient,
  type SlowOutcome,
  startBenchDaemon,
  startSlowClient,
  traffic,
  trafficLine,
  type TrafficResult,
} from "./lib/mod.ts";
import type { SmtpClient } from "../testing/smtp_client.ts";

const args = benchArgs({
  usage: "deno run -A bench/connections.ts [options]",
  options: {
    idle: { type: "string", default: "2000", check: "number", help: "idle sessions" },
    slow: { type: "string", default: "20", check: "number", help: "slow clients of each kind" },
    timeout: { type: "string", default: "20s", arg: "DURATION", help: "smtp.timeouts.command and data_block" },
    drip: { type: "string", default: "5", check: "number", help: "slow clients send a byte every this many seconds" },
    window: { type: "string", default: "90", check: "number", help: "watch the slow clients this many seconds" },
    "traffic-seconds": { type: "string", default: "3", check: "number", help: "length of each normal-sender run" },
    rate: { type: "string", default: "100", check: "number", help: "offered rate of the paced normal sender (msg/s)" },
    json: { type: "string", arg: "FILE", help: "append the results as a JSON line" },
  },
}).values;
const IDLE = Number(args.idle);
const SLOW = Number(args.slow);
const TIMEOUT_MS = parseDuration(args.timeout);
if (TIMEOUT_MS === undefined) {
  console.error(`error: --timeout: expected a duration like "20s", got "${args.timeout}" (see --help)`);
  Deno.exit(2);
}
const DRIP_MS = Number(args.drip) * 1000;
const WINDOW_MS = Number(args.window) * 1000;
const TRAFFIC_S = Number(args["traffic-seconds"]);
const RATE = Number(args.rate);

/** The soft limit on open files of this process (the daemon inherits the same). */
async function openFileLimit(): Promise<number> {
  const text = await Deno.readTextFile("/proc/self/limits").catch(() => "");
  return Number(/Max open files\s+(\d+)/.exec(text)?.[1] ?? NaN);
}

interface IdleSession {
  conn: SmtpClient;
  openedAt: number;
  closed: Promise<{ at: number; reply: string }>;
}

/** Opens `n` idle sessions, `parallel` at a time; each watches for the server closing it. */
async function openIdle(port: number, n: number, parallel = 50) {
  const sessions: IdleSession[] = [];
  const errors: string[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < n) {
      next++;
      try {
        const conn = await openSession(port, `idle${next}.bench.test`);
        const openedAt = performance.now();
        const closed = conn.readToEnd().then((text) => ({
          at: conn.closedAt || performance.now(),
          reply: text.trim().split("\r\n").at(-1) ?? "",
        }));
        sessions.push({ conn, openedAt, closed });
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  }));
  return { sessions, errors };
}

const normal = (port: number) => ({
  flat: () => traffic({ port, sessions: 4, seconds: TRAFFIC_S }),
  paced: () => traffic({ port, sessions: 4, seconds: TRAFFIC_S, rate: RATE }),
});

function summarize(outcomes: { seconds: number; reply: string; cut: boolean }[]) {
  const cut = outcomes.filter((o) => o.cut);
  const secs = cut.map((o) => o.seconds).sort((a, b) => a - b);
  const replies = new Map<string, number>();
  for (const o of cut) replies.set(o.reply.replace(/^(\d{3}(?: \d\.\d+\.\d+)?).*$/, "$1"), 0);
  for (const o of cut) {
    const k = o.reply.replace(/^(\d{3}(?: \d\.\d+\.\d+)?).*$/, "$1");
    replies.set(k, replies.get(k)! + 1);
  }
  return {
    total: outcomes.length,
    cut: cut.length,
    min: secs[0] ?? NaN,
    median: percentile(secs, 50),
    max: secs.at(-1) ?? NaN,
    replies: Object.fromEntries(replies),
    example: cut[0]?.reply ?? "",
  };
}

async function main() {
  const limit = await openFileLimit();
  console.log(
    `connections benchmark: ${IDLE} idle sessions, ${SLOW} slow clients of each of ${SLOW_KINDS.length} kinds; ` +
      `bench config: smtp.timeouts.command = data_block = "${args.timeout}" (defaults 5m / 3m), a byte every ${
        DRIP_MS / 1000
      } s from drippers`,
  );
  console.log(machineLine(await machineInfo()));
  console.log(`open files limit (soft) ${limit}`);
  if (limit < IDLE + SLOW * SLOW_KINDS.length + 200) {
    console.log(`too few file descriptors: run under \`ulimit -n 65536\` (sh -c 'ulimit -n 65536; exec deno run …')`);
    Deno.exit(2);
  }
  const maxConns = IDLE + SLOW * SLOW_KINDS.length + 200;
  const bd: BenchDaemon = await startBenchDaemon(`
[smtp]
max_connections = ${maxConns}
max_connections_per_ip = ${maxConns}

[smtp.timeouts]
command = "${args.timeout}"
data_block = "${args.timeout}"
`);
  const port = bd.d.port;
  const results: Record<string, unknown> = { bench: "connections", idle: IDLE, slow: SLOW, timeout: args.timeout };
  const show = (label: string, r: TrafficResult, load: string) =>
    console.log(`${label}${trafficLine(r)}   [load ${load}]`);
  try {
    // 1. Baseline.
    const n = normal(port);
    await n.flat(); // warm-up
    const rss0 = await procStat(bd.pid);
    const base = { flat: await n.flat(), paced: await n.paced(), load: await loadText() };
    console.log(`\n1. normal sender alone (daemon VmRSS ${(rss0.rssKb / 1024).toFixed(0)} MB)`);
    show("   flat out, 4 sessions:     ", base.flat, base.load);
    show(`   offered ${RATE}/s, 4 sessions:`, base.paced, base.load);
    results.baseline = base;

    // 2. Idle sessions.
    const t0 = performance.now();
    const idle = await openIdle(port, IDLE);
    const openS = (performance.now() - t0) / 1000;
    const rss1 = await procStat(bd.pid);
    const listed = await bd.request<{ sessions: unknown[] }>("smtp.connections");
    const withIdle = { flat: await n.flat(), paced: await n.paced(), load: await loadText() };
    const stillOpen = idle.sessions.filter((s) => !s.conn.closed).length;
    console.log(
      `\n2. ${idle.sessions.length} idle sessions opened in ${openS.toFixed(1)} s (${idle.errors.length} failed${
        idle.errors.length ? `: ${idle.errors[0]}` : ""
      }); daemon VmRSS ${(rss1.rssKb / 1024).toFixed(0)} MB (+${
        ((rss1.rssKb - rss0.rssKb) / idle.sessions.length).toFixed(1)
      } KB per session), ${rss1.fds} fds; control "smtp connections" listed ${listed.result.sessions.length} in ${
        listed.ms.toFixed(0)
      } ms`,
    );
    show("   flat out, 4 sessions:     ", withIdle.flat, withIdle.load);
    show(`   offered ${RATE}/s, 4 sessions:`, withIdle.paced, withIdle.load);
    console.log(`   idle sessions still open after the measurement: ${stillOpen}`);
    results.idleOpen = {
      opened: idle.sessions.length,
      errors: idle.errors.length,
      seconds: openS,
      rssMb: rss1.rssKb / 1024,
      kbPerSession: (rss1.rssKb - rss0.rssKb) / idle.sessions.length,
      listed: listed.result.sessions.length,
      listMs: listed.ms,
      stillOpen,
    };
    results.withIdle = withIdle;

    // 3. Slow clients on top.
    const slow: SlowClient[] = [];
    for (const kind of SLOW_KINDS) for (let i = 0; i < SLOW; i++) slow.push(startSlowClient(port, kind, DRIP_MS));
    await new Promise((r) => setTimeout(r, 1000));
    const withSlow = { flat: await n.flat(), paced: await n.paced(), load: await loadText() };
    const idleOpenDuringSlow = idle.sessions.filter((s) => !s.conn.closed).length;
    console.log(
      `\n3. + ${slow.length} slow clients (${idleOpenDuringSlow} idle sessions still open at the end of this step)`,
    );
    show("   flat out, 4 sessions:     ", withSlow.flat, withSlow.load);
    show(`   offered ${RATE}/s, 4 sessions:`, withSlow.paced, withSlow.load);
    results.withSlow = { ...withSlow, idleStillOpen: idleOpenDuringSlow };

    // 4. Who gets cut, when, with what.
    const deadline = new Promise((r) => setTimeout(r, WINDOW_MS));
    await Promise.race([
      Promise.all([...slow.map((s) => s.done), ...idle.sessions.map((s) => s.closed)]),
      deadline,
    ]);
    for (const s of slow) s.stop();
    const outcomes: SlowOutcome[] = await Promise.all(slow.map((s) => s.done));
    const idleOutcomes = await Promise.all(idle.sessions.map(async (s) => {
      const open = !s.conn.closed;
      s.conn.close();
      const c = await s.closed;
      return { cut: !open, seconds: (c.at - s.openedAt) / 1000, reply: c.reply };
    }));
    const rss2 = await procStat(bd.pid);
    const after = { flat: await n.flat(), load: await loadText() };
    console.log(
      `\n4. cut off by the daemon within ${WINDOW_MS / 1000} s (times from the client's last progress; ` +
        `timeouts ${args.timeout})`,
    );
    const cuts: Record<string, unknown> = {};
    const rows: [string, ReturnType<typeof summarize>][] = [["idle (after EHLO)", summarize(idleOutcomes)]];
    for (const kind of SLOW_KINDS) {
      const mine = outcomes.filter((o) => o.kind === kind);
      const s = summarize(mine.map((o) => ({ cut: o.cut, seconds: o.secondsToCut, reply: o.reply })));
      const dripped = Math.max(...mine.map((o) => o.dripped));
      const errs = mine.filter((o) => o.error);
      rows.push([
        `${kind}${dripped ? ` (${dripped} bytes dripped)` : ""}${
          errs[0] ? ` [${errs.length} setup errors: ${errs[0].error}]` : ""
        }`,
        s,
      ]);
    }
    for (const [label, s] of rows) {
      cuts[label] = s;
      console.log(
        `   ${label.padEnd(38)} ${s.cut}/${s.total} cut` +
          (s.cut
            ? `, after ${s.min.toFixed(1)}–${s.max.toFixed(1)} s (median ${s.median.toFixed(1)} s), replies ${
              JSON.stringify(s.replies)
            }`
            : `: still open after ${WINDOW_MS / 1000} s`),
      );
    }
    const example = rows.find(([, s]) => s.example)?.[1].example;
    if (example) console.log(`   reply text: "${example}"`);
    console.log(`   daemon VmRSS ${(rss2.rssKb / 1024).toFixed(0)} MB, VmHWM ${(rss2.hwmKb / 1024).toFixed(0)} MB`);
    show("   normal sender afterwards, flat out: ", after.flat, after.load);
    results.cuts = cuts;
    results.after = after;
    results.rssMb = {
      before: rss0.rssKb / 1024,
      idle: rss1.rssKb / 1024,
      end: rss2.rssKb / 1024,
      hwm: rss2.hwmKb / 1024,
    };
    await appendJson(args.json, results);
  } finally {
    await bd.stop();
  }
}

await main();
