/**
 * Delivery transport benchmarks, each against a real local peer in the same run:
 *
 * - LMTP: smtp-source (4 KB, 20 sessions) → MTA → Dovecot LMTP (Unix socket, Maildir),
 *   Empath (`transport = "lmtp"`) and Postfix (`default_transport = lmtp:unix:…`) to the
 *   same Dovecot. The rate is messages in the Maildir per second, from the first message
 *   sent to the last one stored.
 * - Webhook: smtp-source → Empath (`transport = "http"`, raw, signed) → a Deno.serve sink
 *   in this process; messages the sink received per second.
 *
 * Each cell runs `--runs` times (default 3); the median is reported with the load.
 *
 *   deno run -A bench/transports.ts
 *   deno run -A bench/transports.ts --messages 500 --runs 3 --skip-postfix
 *   deno run -A bench/transports.ts --skip-postfix --cpu-prof /tmp/prof   # then bench/profile_summary.ts
 * @module
 */
import { join } from "node:path";
import { benchArgs } from "./lib/cli_args.ts";
import { startDaemon } from "../testing/daemon.ts";
import { startDovecot } from "../testing/dovecot.ts";
import { freePort } from "../testing/net.ts";
import { CpuGroups, type CpuUsage } from "./lib/proc_cpu.ts";
import { loadText, requireLoadTools, sleep, smtpSource, startPostfix, stopAllOnSignal, table } from "./lib/mod.ts";

const args = benchArgs({
  usage: "deno run -A bench/transports.ts [options]",
  options: {
    messages: { type: "string", default: "1000", check: "number", help: "messages per run" },
    sessions: { type: "string", default: "20", check: "number", help: "parallel smtp-source sessions" },
    size: { type: "string", default: "4096", check: "number", help: "message size (octets)" },
    runs: { type: "string", default: "3", check: "number", help: "runs per cell (the median is reported)" },
    "skip-postfix": { type: "boolean", help: "Empath only" },
    "cpu-prof": {
      type: "string",
      arg: "DIR",
      help: "write a V8 CPU profile of the LMTP cell's daemon here (see bench/profile_summary.ts)",
    },
  },
}).values;
const MESSAGES = Number(args.messages);
const SESSIONS = Number(args.sessions);
const SIZE = Number(args.size);
const RUNS = Number(args.runs);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Delivery progress: messages delivered so far and when the latest one was (epoch ms). */
interface Progress {
  count: number;
  lastAt: number;
}

/**
 * Progress of a Maildir's new/: the file count, and the directory's mtime as the time the
 * latest message was stored (Dovecot renames each message into new/; nothing else writes
 * there). Once the count is complete, that mtime is when the last message arrived, however
 * late the bench looks, so the bench need not list the directory often.
 */
async function maildirProgress(dir: string): Promise<Progress> {
  let count = 0;
  try {
    for await (const _ of Deno.readDir(dir)) count++;
    return { count, lastAt: (await Deno.stat(dir)).mtime?.getTime() ?? Date.now() };
  } catch {
    return { count, lastAt: 0 }; // not created yet
  }
}

/** One cell's result: the rate and the CPU each process group used during it. */
interface CellResult {
  rate: number;
  cpu: CpuUsage;
}

/**
 * Sends MESSAGES through `port` to `to` and waits until `progress()` counts MESSAGES; the rate
 * (messages / time from the start of smtp-source to the last delivery, in msg/s) and the CPU
 * of the `groups` (name → root pids, see bench/lib/proc_cpu.ts) from just before smtp-source
 * starts until it has exited and the last message is in. The bench looks every 100 ms, every
 * 10 ms over the last tenth, so that the CPU window ends soon after the last delivery; the
 * rate does not depend on it (`lastAt`).
 */
async function cell(
  port: number,
  to: string,
  progress: () => Promise<Progress>,
  groups: Record<string, number[]>,
): Promise<CellResult> {
  const cpu = await CpuGroups.start({ ...groups, ...COMMON_GROUPS });
  const t0 = Date.now();
  const sent = smtpSource({ port, messages: MESSAGES, sessions: SESSIONS, size: SIZE, to });
  let last = performance.now();
  let p: Progress;
  while (true) {
    p = await progress();
    if (p.count >= MESSAGES) break;
    if (performance.now() - last > 60_000) throw new Error(`stalled at ${p.count} of ${MESSAGES}`);
    await sleep(p.count >= MESSAGES * 0.9 ? 10 : 100);
    if (p.count > 0) last = performance.now();
  }
  const s = await sent;
  if (s.code !== 0) throw new Error(`smtp-source: ${s.stderr}`);
  return { rate: MESSAGES / (Math.max(1, p.lastAt - t0) / 1000), cpu: await cpu.stop() };
}

/**
 * CPU ms per message: the MTA, Dovecot, smtp-source, the bench process, the kernel's threads
 * (kthreadd's tree: jbd2, kworkers), interrupts (irq + softirq: loopback TCP), and the rest
 * of the machine's busy time (other users' processes, steal, rounding); and the machine's
 * busy share.
 */
interface CpuPerMsg {
  mta: number;
  dovecot?: number;
  smtpSource: number;
  bench: number;
  kernel: number;
  irq: number;
  others: number;
  busyPct: number;
  cores: number;
}

/** The groups every cell samples besides the MTA (and Dovecot): see {@link perMsg}. */
const COMMON_GROUPS = { bench: [Deno.pid], kernel: [2] };

function perMsg(u: CpuUsage): CpuPerMsg {
  const ms = (name: string) => u.groups[name]?.ms ?? 0;
  // The only child the bench process starts and reaps during a cell is smtp-source.
  const source = u.groups.bench?.reapedMs ?? 0;
  const charged = Object.values(u.groups).reduce((a, g) => a + g.ms, 0);
  return {
    mta: ms("mta") / MESSAGES,
    dovecot: u.groups.dovecot ? ms("dovecot") / MESSAGES : undefined,
    smtpSource: source / MESSAGES,
    bench: (ms("bench") - source) / MESSAGES,
    kernel: ms("kernel") / MESSAGES,
    irq: u.machine.irqMs / MESSAGES,
    others: (u.machine.busyMs - charged - u.machine.irqMs) / MESSAGES,
    busyPct: u.machine.busyPct,
    cores: u.machine.capacityMs / u.wallMs,
  };
}

const f2 = (x: number) => x.toFixed(2);

function cpuLine(label: string, r: CellResult): string {
  const c = perMsg(r.cpu);
  const peaks = ["mta", "dovecot"].filter((g) => r.cpu.groups[g])
    .map((g) => `${g} ${Object.entries(r.cpu.groups[g]!.peak).map(([k, n]) => `${k}×${n}`).join(" ")}`)
    .join("; ");
  return `${label}: ${r.rate.toFixed(0)} msg/s; cpu ms/msg: mta ${f2(c.mta)}, ` +
    (c.dovecot === undefined ? "" : `dovecot ${f2(c.dovecot)}, `) +
    `smtp-source ${f2(c.smtpSource)}, bench ${f2(c.bench)}, kernel threads ${f2(c.kernel)}, irq ${f2(c.irq)}, ` +
    `rest of the machine ${f2(c.others)}; machine busy ${c.busyPct.toFixed(0)} % of ` +
    `${c.cores.toFixed(1)} cores over ${(r.cpu.wallMs / 1000).toFixed(2)} s (${r.cpu.samples} samples); ` +
    `peak processes: ${peaks}`;
}

async function lmtpCells(): Promise<string[][]> {
  const users = Array.from({ length: RUNS }, (_, i) => [`empath${i}@example.net`, `postfix${i}@example.net`]).flat();
  const dovecot = await startDovecot({ users: users.map((name) => ({ name })) });
  const results: Record<"empath" | "postfix", CellResult[]> = { empath: [], postfix: [] };
  const loads: string[] = [];
  const maildir = (user: string) => join(dovecot.dir, "mail", user, "Maildir", "new");
  try {
    const d = await startDaemon({
      logLevel: "info",
      toml: `[delivery]\n[delivery.domains."example.net"]\ntransport = "lmtp"\nlmtp = "unix:${dovecot.socket}"\n`,
      permissions: args["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${args["cpu-prof"]}`] : [],
    });
    const trim = setInterval(() => d.logs.splice(0), 2000);
    const pf = args["skip-postfix"] ? undefined : await startPostfix(freePort(), 0, {
      transport: `lmtp:unix:${dovecot.socket}`,
    });
    try {
      for (let i = 0; i < RUNS; i++) {
        loads.push(await loadText());
        const e = `empath${i}@example.net`;
        const r = await cell(d.port, e, () => maildirProgress(maildir(e)), {
          mta: [d.child.pid],
          dovecot: [dovecot.pid],
        });
        results.empath.push(r);
        console.log(cpuLine(`empath  run ${i + 1}`, r));
        if (pf) {
          const p = `postfix${i}@example.net`;
          const r = await cell(pf.port, p, () => maildirProgress(maildir(p)), {
            mta: [pf.masterPid],
            dovecot: [dovecot.pid],
          });
          results.postfix.push(r);
          console.log(cpuLine(`postfix run ${i + 1}`, r));
        }
      }
    } finally {
      clearInterval(trim);
      await d.stop();
      await d.cleanup();
      await pf?.stop();
    }
  } finally {
    await dovecot.stop();
    await dovecot.cleanup();
  }
  console.log(`LMTP load averages (1/5/15 min) at run starts: ${loads.join("; ")}`);
  const rates = (mta: "empath" | "postfix") => results[mta].map((r) => r.rate);
  const rows = [["empath → dovecot (lmtp)", ...fmt(rates("empath"))]];
  if (results.postfix.length) {
    rows.push(["postfix → dovecot (lmtp)", ...fmt(rates("postfix"))]);
    rows.push(["ratio", `${(median(rates("empath")) / median(rates("postfix"))).toFixed(2)}×`, "", ""]);
  }
  console.log(cpuTable(results));
  if (results.postfix.length) console.log(bound(results.empath, results.postfix));
  return rows;
}

/** Median CPU ms/msg per group and cell. */
function cpuTable(results: Record<string, CellResult[]>): string {
  const rows = Object.entries(results).filter(([, rs]) => rs.length > 0).map(([mta, rs]) => {
    const c = rs.map((r) => perMsg(r.cpu));
    const m = (pick: (x: CpuPerMsg) => number) => f2(median(c.map(pick)));
    return [
      mta,
      median(rs.map((r) => r.rate)).toFixed(0),
      m((x) => x.mta),
      m((x) => x.dovecot ?? 0),
      m((x) => x.smtpSource),
      m((x) => x.bench),
      m((x) => x.kernel),
      m((x) => x.irq),
      m((x) => x.others),
      `${median(c.map((x) => x.busyPct)).toFixed(0)} %`,
    ];
  });
  return table(
    ["lmtp (medians)", "msg/s", "mta", "dovecot", "source", "bench", "kthreads", "irq", "rest", "busy"],
    rows,
  );
}

/**
 * The rate Empath's cell could reach if Empath itself used no CPU: the machine's cores
 * divided by the CPU per message of everything else in Empath's cells (medians of the
 * per-run sums), compared with Postfix's measured median; and, without other users' load,
 * with the rate Postfix's own cells' CPU per message allows on an otherwise idle machine.
 */
function bound(empath: CellResult[], postfix: CellResult[]): string {
  const e = empath.map((r) => perMsg(r.cpu));
  const p = postfix.map((r) => perMsg(r.cpu));
  const capacity = 1000 * median(e.map((x) => x.cores));
  const postfixRate = median(postfix.map((r) => r.rate));
  const setup = (x: CpuPerMsg) => (x.dovecot ?? 0) + x.smtpSource + x.bench + x.kernel + x.irq;
  const line = (what: string, ms: number, vs: number, vsWhat: string) =>
    `  ${what}: ${f2(ms)} ms/msg → ≤ ${(capacity / ms).toFixed(0)} msg/s = ${(capacity / ms / vs).toFixed(2)}× ` +
    `${vsWhat} ${vs.toFixed(0)} msg/s`;
  const idlePostfix = capacity / median(p.map((x) => x.mta + setup(x)));
  return [
    `Upper bound for Empath's LMTP cell if Empath used zero CPU (${(capacity / 1000).toFixed(1)} cores):`,
    line(
      "everything but Empath, as measured",
      median(e.map((x) => setup(x) + x.others)),
      postfixRate,
      "Postfix's median",
    ),
    line("dovecot + smtp-source + bench + kernel threads + irq", median(e.map(setup)), postfixRate, "Postfix's median"),
    line(
      "the same, no other load",
      median(e.map(setup)),
      idlePostfix,
      "Postfix's CPU-bound rate on an idle machine (cores / its cells' CPU per message without the rest)",
    ),
    `  Empath as measured, no other load: ${(capacity / median(e.map((x) => x.mta + setup(x)))).toFixed(0)} msg/s`,
  ].join("\n");
}

async function webhookCells(): Promise<string[][]> {
  let received = 0;
  let lastAt = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.arrayBuffer();
    received++;
    lastAt = Date.now();
    return new Response(null, { status: 204 });
  });
  const rates: number[] = [];
  const d = await startDaemon({
    logLevel: "info",
    toml: `[delivery]\n[delivery.domains."example.net"]\ntransport = "http"\nformat = "raw"\n` +
      `url = "http://127.0.0.1:${server.addr.port}/hook"\nsecret = "bench-secret"\n`,
  });
  const trim = setInterval(() => d.logs.splice(0), 2000);
  try {
    for (let i = 0; i < RUNS; i++) {
      const start = received;
      const r = await cell(d.port, `hook${i}@example.net`, () => Promise.resolve({ count: received - start, lastAt }), {
        mta: [d.child.pid],
      });
      rates.push(r.rate);
      console.log(cpuLine(`webhook run ${i + 1}`, r));
    }
  } finally {
    clearInterval(trim);
    await d.stop();
    await d.cleanup();
    await server.shutdown();
  }
  console.log(`webhook load avg now: ${await loadText()}`);
  return [["empath → Deno.serve (webhook, raw)", ...fmt(rates)]];
}

const fmt = (xs: number[]) => [median(xs).toFixed(0), xs.map((x) => x.toFixed(0)).join(" / "), String(xs.length)];

async function main() {
  requireLoadTools();
  stopAllOnSignal();
  console.log(`${MESSAGES} msgs × ${RUNS} runs, ${SIZE} B, ${SESSIONS} sessions`);
  const rows = [...await lmtpCells(), ...await webhookCells()];
  console.log(table(["cell", "median msg/s", "runs", "n"], rows));
}

if (import.meta.main) await main();
