/**
 * Micro-benchmark behind the intake's overlapped syncs (#18, third pass): what a one-session
 * message waits for before its `250`, with the spool's `fdatasync` of a 4 KB segment append
 * and the queue record's Deno KV commit one after the other ("sequential", the order before)
 * or at the same time ("overlapped", `SpoolWriter.stage` + `SpooledData.durable`). Alternating
 * rounds in a temp dir on the spool's file system; p50 and p90 of each wait in ms.
 *
 *   flock /tmp/empath-bench.lock deno run -A bench/sync_overlap.ts
 *   deno run -A bench/sync_overlap.ts --messages 1000 --rounds 3
 */
import { benchArgs } from "./lib/cli_args.ts";
import { percentile } from "./lib/common.ts";

const args = benchArgs({
  usage: "deno run -A bench/sync_overlap.ts [options]",
  options: {
    messages: { type: "string", default: "400", check: "number", help: "messages per round" },
    rounds: { type: "string", default: "2", check: "number", help: "rounds of each variant, alternating" },
  },
});
const MESSAGES = Number(args.values.messages);
const ROUNDS = Number(args.values.rounds);

const dir = await Deno.makeTempDir({ prefix: "empath-sync-overlap-" });
const segment = Deno.openSync(`${dir}/segment`, { write: true, create: true });
const kv = await Deno.openKv(`${dir}/queue.kv`);
const data = new Uint8Array(4200).fill(0x61);
const record = {
  id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R",
  recipients: [{ address: "sink@example.net" }],
  note: "x".repeat(500),
};
const show = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50).toFixed(3)} p90 ${percentile(sorted, 90).toFixed(3)}`;
};

console.log(`sync overlap: ${MESSAGES} × 4 KB appends, ${ROUNDS} rounds per variant, dir ${dir}`);
console.log(`load average at start: ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of ["sequential", "overlapped"] as const) {
      const total: number[] = [];
      const sync: number[] = [];
      const commit: number[] = [];
      for (let i = 0; i < MESSAGES; i++) {
        segment.writeSync(data);
        const t0 = performance.now();
        if (variant === "sequential") {
          await segment.syncData();
          const t1 = performance.now();
          sync.push(t1 - t0);
          await kv.set(["q", round, variant, i], record);
          commit.push(performance.now() - t1);
        } else {
          await Promise.all([
            segment.syncData().then(() => sync.push(performance.now() - t0)),
            kv.set(["q", round, variant, i], record).then(() => commit.push(performance.now() - t0)),
          ]);
        }
        total.push(performance.now() - t0);
      }
      console.log(
        `${variant.padEnd(10)}  wait ${show(total)} | fdatasync ${show(sync)} | kv commit ${show(commit)} ms`,
      );
    }
  }
  console.log(`load average at end: ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
} finally {
  kv.close();
  segment.close();
  await Deno.remove(dir, { recursive: true });
}
