/**
 * Fault-sink run, larger than the CI test (tests/e2e/fault_sink_test.ts): many
 * messages with seeded fault plans (421/451/452/553/554 at MAIL, RCPT, DATA and end of
 * data, disconnects, lost replies, stalls past the 3 s client timeouts) plus refused
 * and stalled greetings. Prints how the messages ended and which faults they met, and
 * checks that each message was delivered or bounced exactly as its plan says; exits 1
 * otherwise.
 *
 *   deno run -A bench/faults.ts                            # 200 messages
 *   deno run -A bench/faults.ts --count 500 --seed 7 --max-faults 4 --permanent-rate 0.1
 * @module
 */
import { benchArgs } from "./lib/cli_args.ts";
import { runFaultScenario, summarizeFaultRun } from "../testing/fault_run.ts";

const args = benchArgs({
  usage: "deno run -A bench/faults.ts [options]",
  options: {
    count: { type: "string", default: "200", check: "number", help: "messages" },
    seed: { type: "string", check: "number", help: "seed of the fault plans (default: random, printed)" },
    "max-faults": { type: "string", default: "3", check: "number", help: "transient faults per message, at most" },
    "permanent-rate": {
      type: "string",
      default: "0.2",
      check: "number",
      help: "share of messages with a permanent fault",
    },
    "no-stalls": { type: "boolean", help: "no stalls past the client timeouts" },
    deadline: { type: "string", default: "300", check: "number", help: "seconds everything may take to settle" },
  },
}).values;

const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const seed = args.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(args.seed);
const count = Number(args.count);
// Every fourth new connection meets a refused or stalled greeting (for the first 200 connections).
const GREETINGS = ["ok", "greet:421 4.3.2 Service not available", "ok", "greet:stall"] as const;
const connections: string[] = Array.from({ length: 200 }, (_, i) => GREETINGS[i % GREETINGS.length]!);
console.log(
  `faults: ${count} messages, up to ${args["max-faults"]} transient faults each, permanent rate ` +
    `${args["permanent-rate"]}, stalls ${args["no-stalls"] ? "off" : "on"}, seed ${seed} (load average ${loadavg()})`,
);
const r = await runFaultScenario({
  seed,
  count,
  maxFaults: Number(args["max-faults"]),
  permanentRate: Number(args["permanent-rate"]),
  stalls: !args["no-stalls"],
  connections,
  deadlineMs: Number(args.deadline) * 1000,
  progress: (line) => console.log(`  ${line}`),
});
const summary = summarizeFaultRun(r);
for (const [k, v] of Object.entries(summary).sort(([a], [b]) => a.localeCompare(b))) {
  console.log(`  ${k.padEnd(24)} ${v}`);
}
const wrong = r.messages.filter((m) => {
  const lost = m.plan.filter((f) => f === "dot:lost").length;
  return m.transactions !== m.plan.length + (m.bounced ? 0 : 1) ||
    m.copies !== lost + (m.bounced ? 0 : 1) ||
    m.dsns.length !== (m.bounced ? 1 : 0) ||
    m.audit.at(-1)?.outcome !== (m.bounced ? "failed" : "delivered");
});
console.log(
  `settled ${r.settled} in ${(r.elapsedMs / 1000).toFixed(1)} s, queue ${r.queueTotal} at the end, ` +
    `${wrong.length} message(s) not as planned (load average ${loadavg()})`,
);
for (const m of wrong.slice(0, 10)) {
  console.log(
    `  ${m.key}: plan ${JSON.stringify(m.plan)}, transactions ${m.transactions}, copies ${m.copies}, ` +
      `dsns ${m.dsns.length}, last ${m.audit.at(-1)?.outcome}`,
  );
}
if (!r.settled || wrong.length > 0) Deno.exit(1);
console.log("OK: every message delivered or bounced as planned, every attempt in the audit log");
