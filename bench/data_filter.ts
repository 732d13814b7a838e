/**
 * Micro-benchmark of the intake's DataFilter (#18): µs per message through `push` + `end`,
 * a fresh filter per message, messages of 4 KB and 100 KB with 76-character CRLF lines fed in
 * 64 KiB Buffer chunks (as smtp-server hands them out). With `--baseline REV` the filter of
 * that git revision (src/smtp/data_filter.ts and its errors.ts, copied to a temp dir) runs
 * too, alternating with the current one. Then smtp-server's DATA-mode scan (`_feedDataStream`)
 * on the same messages (with the terminator): its own per-byte loop ("original") against
 * `installFastDataScan` ("fast"), a fresh parser per message, only the scan calls timed. 5 runs per variant;
 * median and range of µs per message, and the load average.
 *
 *   flock /tmp/empath-bench.lock deno run -A bench/data_filter.ts --baseline 3bdb661
 *   deno run -A bench/data_filter.ts --runs 7 --budget-ms 300
 */
import { Buffer } from "node:buffer";
import * as current from "../src/smtp/data_filter.ts";
import { createParser, installFastDataScan } from "../src/smtp/smtp_server_private.ts";
import { benchArgs } from "./lib/cli_args.ts";
import { loadText, median } from "./lib/mod.ts";

type FilterModule = typeof current;

const args = benchArgs({
  usage: "deno run -A bench/data_filter.ts [options]",
  options: {
    runs: { type: "string", default: "5", check: "number", help: "runs per variant (alternating)" },
    "budget-ms": { type: "string", default: "400", check: "number", help: "milliseconds per run (about)" },
    baseline: { type: "string", arg: "REV", help: "also time the DataFilter of this git revision" },
  },
});
const RUNS = Number(args.values.runs);
/** Each run filters messages for about this long. */
const BUDGET_MS = Number(args.values["budget-ms"]);
const CHUNK = 64 * 1024;

/** The DataFilter module of git revision `rev`, imported from a temp copy. */
async function baselineModule(rev: string): Promise<FilterModule> {
  const dir = await Deno.makeTempDir({ prefix: "empath-data-filter-" });
  for (const file of ["data_filter.ts", "errors.ts"]) {
    const out = await new Deno.Command("git", { args: ["show", `${rev}:src/smtp/${file}`], stdout: "piped" }).output();
    if (!out.success) throw new Error(`git show ${rev}:src/smtp/${file} failed`);
    await Deno.writeFile(`${dir}/${file}`, out.stdout);
  }
  const mod = await import(`file://${dir}/data_filter.ts`) as FilterModule;
  await Deno.remove(dir, { recursive: true });
  return mod;
}

/** `size` octets: headers, then 76-character CRLF lines. */
function message(size: number): Buffer {
  let text = "Subject: bench\r\nFrom: <bench@example.com>\r\nTo: <sink@example.net>\r\n\r\n";
  while (text.length < size) text += "x" + "y".repeat(75) + "\r\n";
  return Buffer.from(text.slice(0, size - 2) + "\r\n", "latin1");
}

function chunks(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) out.push(bytes.subarray(i, i + CHUNK));
  return out;
}

/** µs per message: `count` messages, each through a fresh filter. */
function timeRun(mod: FilterModule, parts: Buffer[], count: number): number {
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const f = new mod.DataFilter({ maxLineLength: 1000, bareNewline: "reject" });
    for (const p of parts) for (const out of f.push(p)) sink += out.length;
    for (const out of f.end()) sink += out.length;
  }
  const us = ((performance.now() - t0) * 1000) / count;
  if (sink !== count * parts.reduce((n, p) => n + p.length, 0)) throw new Error("lost output");
  return us;
}

const fmt = (x: number) => x.toFixed(x < 10 ? 2 : 1);

/**
 * µs per message through a fresh parser's DATA scan (`parts` end with the terminator). The
 * data stream is replaced by a byte counter, so stream plumbing (the same for both) does not
 * dilute the difference nor pile up a run's data in memory.
 */
function timeScan(parts: Buffer[], original: boolean, count: number): number {
  let sink = 0;
  const counter = {
    writable: true,
    destroyed: false,
    write: (c: Buffer) => (sink += c.length, true),
    end: (c?: Buffer) => void (sink += c?.length ?? 0),
    once: () => {},
    removeListener: () => {},
  };
  const done = () => {};
  const parsers = Array.from({ length: count }, () => {
    const parser = createParser({ original });
    parser.startDataMode();
    parser._dataStream = counter as unknown as typeof parser._dataStream;
    return parser;
  });
  const t0 = performance.now();
  for (const parser of parsers) for (const p of parts) parser._feedDataStream(p, done);
  const us = ((performance.now() - t0) * 1000) / count;
  if (sink !== count * (parts.reduce((n, p) => n + p.length, 0) - 3)) throw new Error("lost data");
  return us;
}

/** Runs `time(variant, count)` alternately, `RUNS` times each, and prints medians and ranges. */
function compare(label: string, names: string[], time: (v: number, count: number) => number): void {
  names.forEach((_, v) => time(v, 300)); // warm-up
  const slowest = Math.max(...names.map((_, v) => time(v, 300)));
  const count = Math.max(300, Math.round((BUDGET_MS * 1000) / slowest));
  const results = names.map(() => [] as number[]);
  for (let r = 0; r < RUNS; r++) names.forEach((_, v) => results[v]!.push(time(v, count)));
  const lines = names.map((name, v) => {
    const xs = results[v]!;
    return `${name} ${fmt(median(xs))} µs/msg (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
  });
  const speedup = names.length > 1 ? `; ${(median(results[0]!) / median(results[1]!)).toFixed(1)}x` : "";
  console.log(`${label} (${count} msgs/run, ${RUNS} runs): ${lines.join("; ")}${speedup}`);
}

const variants: [string, FilterModule][] = [["current", current]];
if (args.values.baseline) {
  variants.unshift([`baseline ${args.values.baseline}`, await baselineModule(args.values.baseline)]);
}

console.log(`load average before: ${await loadText()}`);
for (const size of [4 * 1024, 100 * 1024]) {
  const parts = chunks(message(size));
  compare(
    `DataFilter ${size / 1024} KB, ${parts.length} chunks`,
    variants.map(([name]) => name),
    (v, count) => timeRun(variants[v]![1], parts, count),
  );
}
installFastDataScan();
for (const size of [4 * 1024, 100 * 1024]) {
  const parts = chunks(Buffer.concat([message(size), Buffer.from(".\r\n")]));
  compare(
    `DATA scan ${size / 1024} KB, ${parts.length} chunks`,
    ["original", "fast"],
    (v, count) => timeScan(parts, v === 0, count),
  );
}
console.log(`load average after: ${await loadText()}`);
