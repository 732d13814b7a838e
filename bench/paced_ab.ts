/**
 * A/B of accept latency at a fixed offered rate while relaying (issue #18's "paced" target), one
 * variant per run, for alternating runs under the bench lock: a fresh daemon and sink, 500 messages
 * flat out (warm-up, relayed), then `--messages` at `--rate` over 20 sessions, 4 KB. Prints one line:
 * variant, load average, p50/p99/max accept latency.
 *
 *   flock /tmp/empath-bench.lock deno run -A bench/paced_ab.ts --name relay
 *   flock /tmp/empath-bench.lock deno run -A bench/paced_ab.ts --name no-relay --no-relay
 *   flock /tmp/empath-bench.lock deno run -A bench/paced_ab.ts --name v8-default --v8-flags=--expose-gc
 * @module
 */
import { startDaemon } from "../testing/daemon.ts";
import { START_PERMISSIONS } from "../testing/repo.ts";
import { benchArgs } from "./lib/cli_args.ts";
import { loadRun } from "./lib/client.ts";
import { empathRelayToml, startSink } from "./lib/mod.ts";

const args = benchArgs({
  usage: "deno run -A bench/paced_ab.ts [options]",
  options: {
    name: { type: "string", default: "relay", help: "variant name printed with the result" },
    "no-relay": { type: "boolean", help: "delivery off (messages stay queued), as bench/accept.ts" },
    "v8-flags": { type: "string", arg: "FLAGS", help: "replaces the start task's --v8-flags value" },
    toml: { type: "string", arg: "TOML", help: "appended to the daemon's config (\\n for newlines)" },
    rate: { type: "string", default: "200", check: "number", help: "offered rate, msg/s" },
    messages: { type: "string", default: "2000", check: "number", help: "messages in the paced run" },
  },
}).values;

const perms = START_PERMISSIONS.map((p) =>
  args["v8-flags"] !== undefined && p.startsWith("--v8-flags") ? `--v8-flags=${args["v8-flags"]}` : p
);
(START_PERMISSIONS as string[]).splice(0, START_PERMISSIONS.length, ...perms);
const sink = await startSink();
const relay = !args["no-relay"];
const toml = (relay ? empathRelayToml(sink.port) : "") + (args.toml ?? "").replaceAll("\\n", "\n");
const d = await startDaemon({ toml, logLevel: "info", output: "discard" });
try {
  const w = await loadRun({ port: d.port, messages: 500, sessions: 20, size: 4096 });
  if (relay) await sink.waitFor(w.sent, 120_000);
  const l = await loadRun({
    port: d.port,
    messages: Number(args.messages),
    sessions: 20,
    size: 4096,
    rate: Number(args.rate),
  });
  if (relay) await sink.waitFor(w.sent + l.sent, 120_000);
  console.log(
    `${args.name} load ${Deno.loadavg().map((x) => x.toFixed(2)).join(" ")} p50 ${l.p50.toFixed(1)} p99 ${
      l.p99.toFixed(1)
    } max ${l.max.toFixed(1)} ms, ${l.rate.toFixed(0)} msg/s achieved, errors ${l.errors}`,
  );
} finally {
  await d.stop();
  await d.cleanup();
  await sink.stop();
}
