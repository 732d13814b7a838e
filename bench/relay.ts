/**
 * Relay benchmark, end to end: smtp-source → MTA → smtp-sink, for Empath and for
 * Postfix on the same machine, in the same run, with the same tools and load.
 * The rate is messages that reached the sink per second, from the first message
 * sent to the last one received. fsync is on for both (Empath's default; Postfix
 * always fsyncs its queue files).
 *
 *   deno run -A bench/relay.ts                          # 5000 msgs, 4 KB, 20 sessions, 1 rcpt
 *   deno run -A bench/relay.ts --messages 2000 --size 102400 --sessions 20 --recipients 10
 *   deno run -A bench/relay.ts --skip-postfix
 */
import { parseArgs } from "node:util";
import { startDaemon } from "../tests/helpers/daemon.ts";
import { startPostfix } from "./postfix.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    messages: { type: "string", default: "5000" },
    size: { type: "string", default: "4096" },
    sessions: { type: "string", default: "20" },
    recipients: { type: "string", default: "1" },
    "skip-postfix": { type: "boolean", default: false },
  },
}).values;
const MESSAGES = Number(args.messages);
const RCPTS = Number(args.recipients);

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function startSink(port: number, dir: string) {
  await Deno.mkdir(dir, { recursive: true });
  await new Deno.Command("chown", { args: ["postfix", dir] }).output();
  const child = new Deno.Command("smtp-sink", {
    args: ["-u", "postfix", "-d", `${dir}/%H%M%S.`, `127.0.0.1:${port}`, "256"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 300));
  return {
    async count() {
      let n = 0;
      for await (const _ of Deno.readDir(dir)) n++;
      return n;
    },
    async clear() {
      for await (const e of Deno.readDir(dir)) await Deno.remove(`${dir}/${e.name}`);
    },
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

async function measure(name: string, port: number, sink: Awaited<ReturnType<typeof startSink>>, pid?: number) {
  await sink.clear();
  const t0 = performance.now();
  const src = new Deno.Command("smtp-source", {
    args: [
      "-d",
      "-s",
      String(args.sessions),
      "-m",
      String(MESSAGES),
      "-l",
      String(args.size),
      "-r",
      String(RCPTS),
      "-f",
      "bench@example.com",
      "-t",
      "sink@example.net",
      `127.0.0.1:${port}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const srcDone = src.output().then((o) => ({ at: performance.now(), code: o.code }));
  // smtp-sink writes one file per transaction; with -r N all recipients share one transaction.
  const expected = MESSAGES;
  let n = 0;
  let peakKb = 0;
  while ((n = await sink.count()) < expected) {
    if (performance.now() - t0 > 600_000) throw new Error(`${name}: only ${n}/${expected} arrived in 10 minutes`);
    if (pid) {
      const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
      peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const seconds = (performance.now() - t0) / 1000;
  const accepted = await srcDone;
  if (accepted.code !== 0) throw new Error(`${name}: smtp-source failed`);
  const acceptSeconds = (accepted.at - t0) / 1000;
  return { name, rate: n / seconds, acceptRate: MESSAGES / acceptSeconds, seconds, peakMb: peakKb / 1024 };
}

const sinkPort = freePort();
const sink = await startSink(sinkPort, `/dev/shm/empath-bench-sink-${sinkPort}`);
const results = [];
try {
  console.log(
    `relay benchmark: ${MESSAGES} msgs × ${args.size} B, ${args.sessions} sessions, ${RCPTS} rcpt/msg, fsync on`,
  );
  console.log(
    `machine: ${navigator.hardwareConcurrency} cores, ${Deno.build.os}/${Deno.build.arch}, deno ${Deno.version.deno}`,
  );
  const d = await startDaemon({
    toml: `[delivery]\nrelay_host = "127.0.0.1:${sinkPort}"\ntls = "none"\nconcurrency = 200\n` +
      `max_connections_per_domain = 40\n`,
    logLevel: "info",
  });
  try {
    results.push(await measure("empath", d.port, sink, d.child.pid));
  } finally {
    await d.stop();
    await d.cleanup();
  }
  if (!args["skip-postfix"]) {
    const pf = await startPostfix(freePort(), sinkPort);
    try {
      results.push(await measure("postfix", pf.port, sink));
    } finally {
      await pf.stop();
    }
  }
} finally {
  await sink.stop();
}
for (const r of results) {
  console.log(
    `${r.name.padEnd(8)} end-to-end ${r.rate.toFixed(0).padStart(5)} msg/s  (accepted at ${
      r.acceptRate.toFixed(0)
    } msg/s, ${r.seconds.toFixed(1)} s${r.peakMb ? `, peak RSS ${r.peakMb.toFixed(0)} MB` : ""})`,
  );
}
if (results.length === 2) console.log(`ratio empath/postfix: ${(results[0].rate / results[1].rate).toFixed(2)}x`);
