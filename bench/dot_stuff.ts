/**
 * Micro-benchmark of outbound DATA encoding (#18): nodemailer's DataStream `_transform` per
 * message, its own per-byte loop ("original") against the indexOf fast path
 * (`installFastDotStuffing`, "patched"). Messages of 4 KB and 100 KB, 76-character CRLF lines
 * with a few lines starting with "." (every 40th; and 100 KB without any, for comparison), fed in 64 KiB chunks as the spool reader hands them out.
 * Only the transform calls are timed: the streams are made beforehand and `push` is replaced by
 * a byte counter, so stream plumbing (the same for both) does not dilute the difference.
 * 5 runs per variant, alternating; median and range of µs per message, and the load average.
 *
 *   flock /tmp/empath-bench.lock deno run -A bench/dot_stuff.ts
 *   deno run -A bench/dot_stuff.ts --runs 7 --budget-ms 300
 */
import { Buffer } from "node:buffer";
import { createDataStream, type DataStream, installFastDotStuffing } from "../src/delivery/nodemailer_private.ts";
import { loadText, median } from "./lib/mod.ts";
import { benchArgs } from "./lib/cli_args.ts";

const args = benchArgs({
  usage: "deno run -A bench/dot_stuff.ts [options]",
  options: {
    runs: { type: "string", default: "5", check: "number", help: "alternating runs per message size" },
    "budget-ms": { type: "string", default: "400", check: "number", help: "time each run spends encoding" },
  },
});
const RUNS = Number(args.values.runs);
/** Each run encodes messages for about this long. */
const BUDGET_MS = Number(args.values["budget-ms"]);
const CHUNK = 64 * 1024;

installFastDotStuffing();

/** `size` octets: headers, then 76-character lines; with `dots`, every 40th line starts with ".". */
function message(size: number, dots: boolean): Buffer {
  let text = "Subject: bench\r\nFrom: <bench@example.com>\r\n\r\n";
  for (let n = 0; text.length < size; n++) {
    text += (dots && n % 40 === 39 ? "." : "x") + "y".repeat(75) + "\r\n";
  }
  return Buffer.from(text.slice(0, size - 2) + "\r\n", "latin1");
}

function chunks(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) out.push(bytes.subarray(i, i + CHUNK));
  return out;
}

type Internals = { _transform(chunk: Buffer, encoding: string, done: () => void): void; push(c: Uint8Array): boolean };

/** µs per message: `count` messages through fresh streams, only the transform calls timed. */
function timeRun(parts: Buffer[], original: boolean, count: number): number {
  let sink = 0;
  const push = (c: Uint8Array) => {
    sink += c.length;
    return true;
  };
  const streams: DataStream[] = [];
  for (let i = 0; i < count; i++) {
    const s = createDataStream({ original });
    (s as unknown as Internals).push = push;
    streams.push(s);
  }
  const done = () => {};
  const t0 = performance.now();
  for (const s of streams) {
    const t = s as unknown as Internals;
    for (const p of parts) t._transform(p, "buffer", done);
  }
  const us = ((performance.now() - t0) * 1000) / count;
  if (sink < count * parts.reduce((n, p) => n + p.length, 0)) throw new Error("lost output");
  return us;
}

const fmt = (x: number) => x.toFixed(x < 10 ? 2 : 1);

console.log(`load average before: ${await loadText()}`);
const cases: [number, boolean][] = [[4 * 1024, true], [100 * 1024, true], [100 * 1024, false]];
for (const [size, dots] of cases) {
  const parts = chunks(message(size, dots));
  // Messages per run from a warm-up of the original (the slower one).
  timeRun(parts, true, 200);
  timeRun(parts, false, 200);
  const count = Math.max(200, Math.round((BUDGET_MS * 1000) / timeRun(parts, true, 200)));
  const results: Record<"original" | "patched", number[]> = { original: [], patched: [] };
  for (let r = 0; r < RUNS; r++) {
    results.original.push(timeRun(parts, true, count));
    results.patched.push(timeRun(parts, false, count));
  }
  const line = (name: "original" | "patched") => {
    const xs = results[name];
    return `${name} ${fmt(median(xs))} µs/msg (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
  };
  const speedup = median(results.original) / median(results.patched);
  console.log(
    `${size / 1024} KB ${dots ? "with" : "no"} dot lines (${parts.length} chunk${
      parts.length > 1 ? "s" : ""
    }, ${count} msgs/run, ${RUNS} runs): ` +
      `${line("original")}; ${line("patched")}; ${speedup.toFixed(1)}x`,
  );
}
console.log(`load average after: ${await loadText()}`);
