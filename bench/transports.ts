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
import {
  bgText,
  loadAvg,
  requireLoadTools,
  sleep,
  smtpSource,
  startPostfix,
  stopAllOnSignal,
  table,
} from "./lib/mod.ts";

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

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  try {
    for await (const _ of Deno.readDir(dir)) n++;
  } catch { /* not created yet */ }
  return n;
}

/** Sends MESSAGES through `port` to `to` and waits until `delivered()` reaches MESSAGES; msgs/s. */
async function cell(port: number, to: string, delivered: () => Promise<number>): Promise<number> {
  const t0 = performance.now();
  const sent = smtpSource({ port, messages: MESSAGES, sessions: SESSIONS, size: SIZE, to });
  let last = performance.now();
  while (true) {
    const n = await delivered();
    if (n >= MESSAGES) break;
    if (performance.now() - last > 60_000) throw new Error(`stalled at ${n} of ${MESSAGES}`);
    await sleep(20);
    if (n > 0) last = performance.now();
  }
  const end = performance.now();
  const s = await sent;
  if (s.code !== 0) throw new Error(`smtp-source: ${s.stderr}`);
  return MESSAGES / ((end - t0) / 1000);
}

async function lmtpCells(): Promise<string[][]> {
  const users = Array.from({ length: RUNS }, (_, i) => [`empath${i}@example.net`, `postfix${i}@example.net`]).flat();
  const dovecot = await startDovecot({ users: users.map((name) => ({ name })) });
  const rates: Record<string, number[]> = { empath: [], postfix: [] };
  const loads: number[] = [];
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
        loads.push(await loadAvg());
        const e = `empath${i}@example.net`;
        rates.empath!.push(await cell(d.port, e, () => countFiles(maildir(e))));
        if (pf) {
          const p = `postfix${i}@example.net`;
          rates.postfix!.push(await cell(pf.port, p, () => countFiles(maildir(p))));
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
  const rows = [["empath → dovecot (lmtp)", ...fmt(rates.empath!)]];
  if (rates.postfix!.length) {
    rows.push(["postfix → dovecot (lmtp)", ...fmt(rates.postfix!)]);
    rows.push(["ratio", `${(median(rates.empath!) / median(rates.postfix!)).toFixed(2)}×`, "", ""]);
  }
  console.log(`LMTP load avg at run starts: ${loads.map((l) => l.toFixed(2)).join(", ")}`);
  return rows;
}

async function webhookCells(): Promise<string[][]> {
  let received = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.arrayBuffer();
    received++;
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
      rates.push(await cell(d.port, `hook${i}@example.net`, () => Promise.resolve(received - start)));
    }
  } finally {
    clearInterval(trim);
    await d.stop();
    await d.cleanup();
    await server.shutdown();
  }
  console.log(`webhook load avg now: ${bgText({ load: await loadAvg(), busy: 0 })}`);
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
