/**
 * DKIM signing throughput: signatures/s inline (main thread) vs the Worker pool, for
 * RSA-2048 and Ed25519 on a 4 KB message; plus the worst event-loop stall seen while
 * signing (what an SMTP session would feel).
 *
 *   deno run --allow-all bench/dkim_sign.ts [--seconds 3] [--workers 2]
 */
import { benchArgs } from "./lib/cli_args.ts";
import {
  createInlineSigner,
  createKeySet,
  createSignPool,
  type DkimSigner,
  generateDkimKey,
  signMessage,
} from "../src/auth/mod.ts";

const args = benchArgs({
  usage: "deno run --allow-all bench/dkim_sign.ts [options]",
  options: {
    seconds: { type: "string", default: "3", check: "number", help: "length of each measurement" },
    workers: { type: "string", default: "2", check: "number", help: "threads of the Worker pool" },
  },
}).values;
const seconds = Number(args.seconds);
const workers = Number(args.workers);

const body = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n".repeat(48);
const message = new TextEncoder().encode(
  "From: Bench <bench@bench.test>\r\nTo: x@rcpt.test\r\nSubject: bench\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n" +
    "Message-ID: <b@bench.test>\r\n\r\n" + body,
);

async function run(label: string, signer: DkimSigner, type: "rsa" | "ed25519", concurrency: number) {
  const key = generateDkimKey(type);
  const keySet = createKeySet([{
    domain: "bench.test",
    selector: "s",
    type,
    keyFile: "-",
    privateKeyPem: key.privateKeyPem,
  }]);
  let stall = 0;
  let last = performance.now();
  const probe = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - last - 1);
    last = now;
  }, 1);
  const end = performance.now() + seconds * 1000;
  let done = 0;
  let longestCall = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await signMessage(message, { keySet, signer });
      longestCall = Math.max(longestCall, performance.now() - t0);
      done++;
    }
  }));
  clearInterval(probe);
  // Inline signing never yields, so the probe cannot run: the stall is one whole signing.
  if (concurrency === 1) stall = longestCall;
  const rate = done / seconds;
  console.log(
    `${label.padEnd(22)} ${type.padEnd(8)} ${rate.toFixed(0).padStart(7)} sig/s  max loop stall ${stall.toFixed(1)} ms`,
  );
}

console.log(`4 KB message (${message.length} bytes), ${seconds}s per cell, ${navigator.hardwareConcurrency} CPUs`);
for (const type of ["rsa", "ed25519"] as const) {
  await run("inline", createInlineSigner(), type, 1);
  const pool = createSignPool({ size: workers });
  await run(`pool (${workers} workers)`, pool, type, workers * 4);
  pool.close();
}
