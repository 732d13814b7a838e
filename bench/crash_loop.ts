/**
 * Crash loop, larger than the CI test (tests/e2e/crash_loop_test.ts): parallel SMTP
 * senders, the daemon SIGKILLed at random (seeded) moments and restarted, delivery on
 * to a real sink that records each message's X-Test-Id. Prints accepted / delivered /
 * duplicates / lost and the time the queue took to drain; exits 1 when an accepted
 * message was lost or anything was left in the queue or the spool.
 *
 *   deno run -A bench/crash_loop.ts                       # 30 kills, 8 senders
 *   deno run -A bench/crash_loop.ts --kills 100 --senders 16 --seed 42 --backend file
 *   flock /tmp/empath-bench.lock deno run -A bench/crash_loop.ts
 * @module
 */
import { benchArgs } from "./lib/cli_args.ts";
import { describeCrashLoop, runCrashLoop } from "../testing/crash_loop.ts";

const args = benchArgs({
  usage: "deno run -A bench/crash_loop.ts [options]",
  options: {
    kills: { type: "string", default: "30", check: "number", help: "SIGKILLs (each followed by a restart)" },
    senders: { type: "string", default: "8", check: "number", help: "parallel SMTP senders" },
    seed: { type: "string", check: "number", help: "seed of the kill moments (default: random, printed)" },
    "min-accepts": {
      type: "string",
      default: "50",
      check: "number",
      help: "messages each incarnation accepts before its kill",
    },
    "max-delay": {
      type: "string",
      default: "2000",
      check: "number",
      help: "then the kill comes within this many ms (random)",
    },
    tail: { type: "string", default: "2000", check: "number", help: "load after the last restart (ms)" },
    body: { type: "string", default: "4096", check: "number", help: "message body size (octets)" },
    backend: { type: "string", default: "kv", arg: "kv|file", help: "queue backend" },
  },
}).values;

const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

const seed = args.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(args.seed);
const backend = args.backend === "file" ? "file" : "kv";
console.log(
  `crash loop: ${args.kills} SIGKILLs, ${args.senders} senders, ${args.body} B bodies, backend ${backend}, seed ${seed}` +
    ` (load average ${loadavg()} at start)`,
);
const t0 = Date.now();
const r = await runCrashLoop({
  kills: Number(args.kills),
  senders: Number(args.senders),
  seed,
  minAcceptsBeforeKill: Number(args["min-accepts"]),
  maxKillDelayMs: Number(args["max-delay"]),
  tailMs: Number(args.tail),
  drainTimeoutMs: 120_000,
  bodyBytes: Number(args.body),
  backend,
  progress: (line) => console.log(`  ${line}`),
});
console.log(describeCrashLoop(r));
console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s (load average ${loadavg()} at the end)`);
const clean = r.lost.length === 0 && r.finalQueueTotal === 0 && r.finalQueueList === 0 && r.finalSpool.length === 0 &&
  r.finalDataFiles.length === 0 && r.exitCode === 0;
if (!clean) {
  console.log(`FAILED: lost ${JSON.stringify(r.lost.slice(0, 20))}`);
  Deno.exit(1);
}
console.log("OK: every accepted message delivered, queue and spool empty");
