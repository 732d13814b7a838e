/**
 * Large message benchmark (issue #8, "Load and scale"): one 200 MiB message is
 * accepted by a real daemon (spool on disk, fsync on) and relayed to a discarding
 * sink that counts the octets it receives; the daemon's memory must grow by less
 * than 64 MB.
 *
 * Memory: VmRSS sampled every 50 ms from /proc/<pid>/status (peak − the VmRSS before
 * the message) and VmHWM after − VmHWM before. A 100 KB warm-up message goes first so
 * the code paths are loaded before the baseline is read.
 *
 * Two runs, each on a fresh daemon:
 * - `phases`: delivery to example.net held with `queue suspend` (persisted) while the
 *   message is received; the daemon is restarted (the message stays queued, the
 *   suspension too), warmed up again with mail to another domain, and `queue resume`
 *   relays it: receiving and relaying each measured against a fresh process's baseline
 *   (a global `queue freeze` would hold the warm-up too: it is persisted across restarts);
 * - `direct`: the normal path, relayed the moment it is queued.
 *
 * `smtp.max_message_size` is raised to the message size + 50 MiB for the run.
 *
 *   flock /tmp/empath-bench.lock deno run -A bench/large_message.ts
 *   deno run -A bench/large_message.ts --size-mb 20 --runs direct
 */
import { benchArgs } from "./lib/cli_args.ts";
import {
  appendJson,
  type BenchDaemon,
  type ByteSink,
  loadText,
  machineInfo,
  machineLine,
  messageBytes,
  openSession,
  type ProcStat,
  procStat,
  restartBenchDaemon,
  RssSampler,
  startBenchDaemon,
  startByteSink,
  transaction,
  until,
} from "./lib/mod.ts";
import type { SmtpClient } from "../testing/smtp_client.ts";

const args = benchArgs({
  usage: "deno run -A bench/large_message.ts [options]",
  options: {
    "size-mb": { type: "string", default: "200", check: "number", help: "message size (MiB)" },
    runs: { type: "string", default: "phases,direct", arg: "phases,direct", help: "which runs" },
    "limit-mb": {
      type: "string",
      default: "64",
      check: "number",
      help: "the daemon's memory growth must stay below (MB)",
    },
    json: { type: "string", arg: "FILE", help: "append the results as JSON lines" },
  },
}).values;
const MIB = 1024 * 1024;
const SIZE = Math.round(Number(args["size-mb"]) * MIB);
const LIMIT_MB = Number(args["limit-mb"]);
const encoder = new TextEncoder();

/** Streams a message of exactly `size` octets (79-octet lines) in ~64 KiB writes; returns the final reply. */
async function sendLarge(c: SmtpClient, size: number): Promise<{ code: number; text: string; dataMs: number }> {
  for (const line of ["MAIL FROM:<bench@example.com> SIZE=" + size, "RCPT TO:<sink@example.net>"]) {
    const r = await c.cmd(line);
    if (r.code !== 250) throw new Error(`${line}: ${r.text}`);
  }
  const r = await c.cmd("DATA");
  if (r.code !== 354) throw new Error(`DATA: ${r.text}`);
  const t0 = performance.now();
  const head = encoder.encode("Subject: large\r\nFrom: <bench@example.com>\r\nTo: <sink@example.net>\r\n\r\n");
  const line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01234\r\n";
  const block = encoder.encode(line.repeat(Math.floor(65_536 / line.length)));
  if (!(await c.write(head))) throw new Error("connection lost");
  let left = size - head.length;
  while (left >= block.length) {
    if (!(await c.write(block))) throw new Error(`connection lost with ${left} octets to go`);
    left -= block.length;
  }
  let lines = Math.floor(left / line.length);
  let extra = left - lines * line.length;
  if (extra === 1) [lines, extra] = [lines - 1, extra + line.length]; // the last line must end with CRLF
  await c.write(encoder.encode(line.repeat(lines) + (extra > 0 ? "x".repeat(extra - 2) + "\r\n" : "")));
  await c.write(".\r\n");
  const done = await c.reply();
  return { ...done, dataMs: performance.now() - t0 };
}

const mbOf = (kb: number) => kb / 1024;

/** Relays a 100 KB message end to end (code paths loaded), then lets the daemon settle. */
async function warmUp(bd: BenchDaemon, sink: ByteSink): Promise<SmtpClient> {
  const c = await openSession(bd.d.port);
  // To another domain than the large message's, so a suspension of example.net (phases) does not hold it.
  const warm = await transaction(c, messageBytes(100_000), "sink@warm.example.org");
  if (warm.reply.code !== 250) throw new Error(`warm-up: ${warm.reply.text}`);
  await sink.waitFor(sink.messages.length + 1, 30_000);
  await new Promise((r) => setTimeout(r, 2000));
  return c;
}

const emptyQueue = (bd: BenchDaemon) =>
  until(async () => (await bd.request<{ total: number }>("queue.stats")).result.total === 0, 60_000, "an empty queue");

/**
 * `direct`: receive and relay at once, one baseline. `phases`: receive with delivery
 * suspended, restart the daemon (the message stays queued, the suspension too), then relay: each side
 * measured from a fresh process's baseline.
 */
async function run(kind: "phases" | "direct") {
  const sink = startByteSink();
  const loadAtStart = await loadText();
  let bd: BenchDaemon = await startBenchDaemon(`
[smtp]
max_message_size = ${SIZE + 50 * MIB}

[delivery]
tls = "none"

[delivery.domains."example.net"]
mx_override = "127.0.0.1:${sink.port}"

[delivery.domains."warm.example.org"]
mx_override = "127.0.0.1:${sink.port}"
`);
  try {
    let c = await warmUp(bd, sink);
    // phases: example.net is suspended (persisted, so it holds across the restart); warm-ups go elsewhere.
    if (kind === "phases") await bd.request("queue.suspend", { domain: "example.net", for: "1h" });
    const before = await procStat(bd.pid);
    const sampler = new RssSampler(bd.pid, 50);
    const t0 = performance.now();
    const accepted = await sendLarge(c, SIZE);
    const acceptS = (performance.now() - t0) / 1000;
    if (accepted.code !== 250) throw new Error(`the large message was refused: ${accepted.text}`);
    let receive: { peakKb: number; after: ProcStat } | undefined;
    let relayBefore = before;
    let relaySampler = sampler;
    let t1 = t0;
    if (kind === "phases") {
      receive = { peakKb: sampler.stop(), after: await procStat(bd.pid) };
      await c.cmd("QUIT");
      c.close();
      bd = await restartBenchDaemon(bd);
      c = await warmUp(bd, sink);
      relayBefore = await procStat(bd.pid);
      relaySampler = new RssSampler(bd.pid, 50);
      t1 = performance.now();
      await bd.request("queue.resume", { domain: "example.net" });
    }
    const arrived = await sink.waitFor(kind === "phases" ? 3 : 2, 600_000);
    await emptyQueue(bd);
    const relayPeakKb = relaySampler.stop();
    const after = await procStat(bd.pid);
    const loadEnd = await loadText();
    await c.cmd("QUIT");
    c.close();
    const result = {
      bench: "large_message",
      kind,
      sizeBytes: SIZE,
      sinkBytes: arrived.bytes,
      acceptS,
      acceptMBps: SIZE / MIB / acceptS,
      relayS: (arrived.endedAt - t1) / 1000,
      reply: accepted.text,
      /** direct: receive and relay together; phases: the receiving daemon. */
      receive: {
        rssBeforeMb: mbOf(before.rssKb),
        peakMb: mbOf(receive?.peakKb ?? relayPeakKb),
        growthMb: mbOf((receive?.peakKb ?? relayPeakKb) - before.rssKb),
        hwmBeforeMb: mbOf(before.hwmKb),
        hwmAfterMb: mbOf((receive?.after ?? after).hwmKb),
        hwmDeltaMb: mbOf((receive?.after ?? after).hwmKb - before.hwmKb),
        rssAfterMb: mbOf((receive?.after ?? after).rssKb),
      },
      /** phases only: the restarted daemon that relays the message. */
      relay: kind === "phases"
        ? {
          rssBeforeMb: mbOf(relayBefore.rssKb),
          peakMb: mbOf(relayPeakKb),
          growthMb: mbOf(relayPeakKb - relayBefore.rssKb),
          hwmBeforeMb: mbOf(relayBefore.hwmKb),
          hwmAfterMb: mbOf(after.hwmKb),
          hwmDeltaMb: mbOf(after.hwmKb - relayBefore.hwmKb),
          rssAfterMb: mbOf(after.rssKb),
        }
        : undefined,
      loadAtStart,
      loadEnd,
    };
    await appendJson(args.json, result);
    return result;
  } finally {
    await bd.stop();
    await sink.stop();
  }
}

type Memory = Awaited<ReturnType<typeof run>>["receive"];
const f = (x: number, d = 0) => x.toFixed(d);
const memLine = (m: Memory) =>
  `VmRSS ${f(m.rssBeforeMb)} MB before, peak ${f(m.peakMb)} MB: growth ${f(m.growthMb, 1)} MB; VmHWM ${
    f(m.hwmBeforeMb)
  } → ${f(m.hwmAfterMb)} MB (delta ${f(m.hwmDeltaMb, 1)} MB); VmRSS after ${f(m.rssAfterMb)} MB`;
const verdict = (m: Memory) => Math.max(m.growthMb, m.hwmDeltaMb) < LIMIT_MB ? "met" : "MISSED";

console.log(
  `large message benchmark: ${(SIZE / MIB).toFixed(0)} MiB (${SIZE} octets) → empath → byte-counting sink; ` +
    `limit: RSS growth < ${LIMIT_MB} MB`,
);
console.log(machineLine(await machineInfo()));
const kinds = args.runs.split(",").filter((k): k is "phases" | "direct" => k === "phases" || k === "direct");
for (const kind of kinds) {
  const r = await run(kind);
  console.log(
    `\n== ${kind === "phases" ? "receive (example.net suspended); restart; relay" : "receive and relay at once"}`,
  );
  console.log(`   load ${r.loadAtStart} at start, ${r.loadEnd} at the end`);
  console.log(
    `   accepted in ${f(r.acceptS, 1)} s (${f(r.acceptMBps)} MiB/s): ${r.reply}; at the sink ${f(r.relayS, 1)} s ` +
      `${kind === "direct" ? "after the first DATA byte" : "after resume"}: ${r.sinkBytes} octets ` +
      `(sent ${r.sizeBytes}, +${r.sinkBytes - r.sizeBytes} = Empath's Received: header)`,
  );
  console.log(`   ${kind === "direct" ? "receive+relay" : "receive"}: ${memLine(r.receive)} → ${verdict(r.receive)}`);
  if (r.relay) console.log(`   relay:   ${memLine(r.relay)} → ${verdict(r.relay)}`);
  console.log(
    `   whole message at the sink: ${r.sinkBytes >= r.sizeBytes && r.sinkBytes - r.sizeBytes < 1024 ? "yes" : "NO"}`,
  );
}
