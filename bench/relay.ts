/**
 * Relay benchmark, one cell with a fixed message count: smtp-source → MTA → smtp-sink,
 * for Empath and for Postfix on the same machine, in the same run, with the same tools
 * and load. The rate is messages that reached the sink per second, from the first
 * message sent to the last one received. fsync is on for both (Empath's default;
 * Postfix always fsyncs its queue files). bench/matrix.ts runs every size × sessions ×
 * recipients combination with the same code (bench/lib/relay_cell.ts).
 *
 *   deno run -A bench/relay.ts                          # 5000 msgs, 4 KB, 20 sessions, 1 rcpt
 *   deno run -A bench/relay.ts --messages 2000 --size 102400 --sessions 20 --recipients 10
 *   deno run -A bench/relay.ts --skip-postfix
 *   deno run -A bench/relay.ts --sessions 1 --skip-postfix --cpu-prof var/prof   # daemon CPU profile
 * @module
 */
import { benchArgs } from "./lib/cli_args.ts";
import {
  BenchSetupError,
  type CellResult,
  machineInfo,
  machineLine,
  requireLoadTools,
  requirePostfix,
  runCell,
  startEmpath,
  startPostfixMta,
  startSink,
  stopAllOnSignal,
} from "./lib/mod.ts";

const args = benchArgs({
  usage: "deno run -A bench/relay.ts [options]",
  options: {
    messages: { type: "string", default: "5000", check: "number", help: "messages to relay" },
    size: { type: "string", default: "4096", check: "number", help: "message size (octets)" },
    sessions: { type: "string", default: "20", check: "number", help: "parallel smtp-source sessions" },
    recipients: { type: "string", default: "1", check: "number", help: "recipients per message" },
    "skip-postfix": { type: "boolean", help: "Empath only" },
    "cpu-prof": { type: "string", arg: "DIR", help: "write the daemon's V8 CPU profile (deno run --cpu-prof) here" },
    toml: {
      type: "string",
      arg: "TEXT",
      help: "Empath config lines appended inside the bench's [delivery] table (A/B of a setting), e.g. 'worker = true'",
    },
  },
}).values;
const spec = { size: Number(args.size), sessions: Number(args.sessions), recipients: Number(args.recipients) };
const MESSAGES = Number(args.messages);

async function main(): Promise<void> {
  requireLoadTools();
  if (!args["skip-postfix"]) await requirePostfix();
  stopAllOnSignal();
  console.log(
    `relay benchmark: ${MESSAGES} msgs × ${spec.size} B, ${spec.sessions} sessions, ${spec.recipients} rcpt/msg, fsync on`,
  );
  console.log(machineLine(await machineInfo()));
  const options = { messages: MESSAGES, latencyMessages: 0, maxBusy: 100, maxWaitMs: 0 };
  const results: CellResult[] = [];
  const sink = await startSink();
  try {
    const profDir = args["cpu-prof"];
    const extra = args.toml ? `${args.toml.replaceAll("\\n", "\n")}\n` : "";
    const empath = await startEmpath(sink.port, extra, profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []);
    try {
      results.push(await runCell(empath, sink, spec, options));
    } finally {
      await empath.stop();
    }
    if (!args["skip-postfix"]) {
      const postfix = await startPostfixMta(sink.port);
      try {
        results.push(await runCell(postfix, sink, spec, options));
      } finally {
        await postfix.stop();
      }
    }
  } finally {
    await sink.stop();
  }
  for (const r of results) {
    console.log(
      `${r.mta.padEnd(8)} end-to-end ${r.e2eRate.toFixed(0).padStart(5)} msg/s  (accepted at ${
        r.acceptRate.toFixed(0)
      } msg/s, ${r.seconds.toFixed(1)} s, peak ${r.mta === "empath" ? "RSS" : "PSS"} ${r.peakRssMb.toFixed(0)} MB${
        r.cpuMsPerMsg !== undefined ? `, cpu ${r.cpuMsPerMsg.toFixed(2)} ms/msg` : ""
      }, load ${r.bg.load.toFixed(2)} → ${r.loadAfter.toFixed(2)})`,
    );
  }
  const [empathResult, postfixResult] = results;
  if (empathResult && postfixResult) {
    console.log(`ratio empath/postfix: ${(empathResult.e2eRate / postfixResult.e2eRate).toFixed(2)}x`);
  }
}

try {
  await main();
} catch (err) {
  console.error(err instanceof BenchSetupError ? `bench/relay.ts: ${err.message}` : err);
  Deno.exit(1);
}
