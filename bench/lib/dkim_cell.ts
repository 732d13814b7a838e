/**
 * The "DKIM on" cell of the relay matrix: 4 KB × 20 sessions × 1 recipient relayed by
 * Empath unsigned, signed with RSA-2048 and signed with Ed25519 (Worker pool, default
 * 2 Workers), in rounds that alternate the three so they see the same background load.
 * The ratio signed/unsigned is taken per round and the median over rounds is reported
 * (target of issue #14: RSA-2048 ≥ 80 % of unsigned).
 * @module
 */
import { join } from "node:path";
import { writeDkimKey } from "../../src/auth/mod.ts";
import type { Sink } from "./load_tools.ts";
import { type CellOptions, type CellResult, runCell, startEmpath } from "./relay_cell.ts";

/** One round's three results. */
export interface DkimRound {
  unsigned: CellResult;
  rsa: CellResult;
  ed25519: CellResult;
}

/** What the DKIM cell measured. */
export interface DkimCellResult {
  rounds: DkimRound[];
  /** Median of the per-round ratios signed e2e rate / unsigned e2e rate. */
  rsaRatio: number;
  ed25519Ratio: number;
  /** Median e2e rates (msg/s). */
  unsignedRate: number;
  rsaRate: number;
  ed25519Rate: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** smtp-source's From: domain (bench@example.com) gets the key. */
function dkimToml(type: "rsa" | "ed25519", keyFile: string): string {
  return `[dkim]\nenabled = true\n[[dkim.keys]]\ndomain = "example.com"\nselector = "bench"\ntype = "${type}"\n` +
    `key_file = "${keyFile}"\n`;
}

/** Runs `rounds` rounds of unsigned / RSA-2048 / Ed25519 against a fresh daemon each. */
export async function runDkimCell(
  sink: Sink,
  rounds: number,
  options: CellOptions,
  onResult?: (variant: string, r: CellResult) => Promise<void> | void,
): Promise<DkimCellResult> {
  const dir = await Deno.makeTempDir({ prefix: "empath-bench-dkim-" });
  const spec = { size: 4096, sessions: 20, recipients: 1 };
  try {
    const rsaFile = join(dir, "rsa.pem");
    const edFile = join(dir, "ed.pem");
    await writeDkimKey(rsaFile, "rsa");
    await writeDkimKey(edFile, "ed25519");
    const variants = { unsigned: "", rsa: dkimToml("rsa", rsaFile), ed25519: dkimToml("ed25519", edFile) };
    const out: DkimRound[] = [];
    for (let i = 0; i < rounds; i++) {
      const round: Partial<DkimRound> = {};
      for (const [name, toml] of Object.entries(variants) as [keyof DkimRound, string][]) {
        const mta = await startEmpath(sink.port, toml);
        try {
          round[name] = await runCell(mta, sink, spec, options);
          await onResult?.(name, round[name]!);
        } finally {
          await mta.stop();
        }
      }
      out.push(round as DkimRound);
    }
    return {
      rounds: out,
      rsaRatio: median(out.map((r) => r.rsa.e2eRate / r.unsigned.e2eRate)),
      ed25519Ratio: median(out.map((r) => r.ed25519.e2eRate / r.unsigned.e2eRate)),
      unsignedRate: median(out.map((r) => r.unsigned.e2eRate)),
      rsaRate: median(out.map((r) => r.rsa.e2eRate)),
      ed25519Rate: median(out.map((r) => r.ed25519.e2eRate)),
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
