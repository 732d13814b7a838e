/**
 * Micro-benchmark of the PostgreSQL store's claim/release: `nodes` stores (one pool and
 * one lease owner each, as separate Empath nodes have) claim batches of due records with
 * `FOR UPDATE SKIP LOCKED` and release them again, flat out, for a fixed time. Claims per
 * second are records claimed (a batch of 20 counts 20). A record held by two owners at
 * once would be a broken lease and is counted as an overlap (must stay 0).
 * @module
 */
import { connectPostgres, createPgStore, type PgQueueStore } from "../../src/cluster/mod.ts";
import { newQueueRecord, type QueueRecord } from "../../src/queue/mod.ts";
import { ulid } from "../../src/spool/mod.ts";

/** Options for {@link claimRate}. */
export interface ClaimRateOptions {
  /** Database URL (already seeded with {@link seedDueRecords}). */
  url: string;
  nodes: number;
  /** Concurrent claim loops per node (the scheduler has one; more shows lock contention). */
  loops?: number;
  /** Records per claim (default 20). */
  batch?: number;
  seconds: number;
}

/** What {@link claimRate} measured. */
export interface ClaimRateResult {
  nodes: number;
  /** Records claimed in all. */
  claims: number;
  /** claim + release round trips. */
  rounds: number;
  seconds: number;
  claimsPerSec: number;
  /** Median claim round trip, ms. */
  claimP50Ms: number;
  /** Records claimed while another owner held them (a broken lease; must be 0). */
  overlaps: number;
}

function record(now: number): QueueRecord {
  const envelope = {
    sender: "bench@example.com",
    recipients: [{ address: "rcpt@dest.example" }],
    client: { address: "127.0.0.1", listener: "mx" },
  };
  return newQueueRecord({ id: ulid(), size: 4096 }, envelope, now);
}

/** Inserts `count` due records (no bodies) so that claims always find work. */
export async function seedDueRecords(url: string, count: number): Promise<void> {
  const sql = await connectPostgres({ url, poolSize: 8 });
  try {
    const store = createPgStore(sql, { owner: "seed", leaseMs: 1 });
    const now = Date.now() - 1000;
    for (let i = 0; i < count; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => store.put(record(now))));
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Runs the claim/release loops of `nodes` owners for `seconds`. */
export async function claimRate(options: ClaimRateOptions): Promise<ClaimRateResult> {
  const batch = options.batch ?? 20;
  const loops = options.loops ?? 1;
  const held = new Map<string, string>();
  const pools = await Promise.all(
    Array.from({ length: options.nodes }, () => connectPostgres({ url: options.url, poolSize: loops + 1 })),
  );
  const stores: PgQueueStore[] = pools.map((sql, i) => createPgStore(sql, { owner: `bench-${i}`, leaseMs: 60_000 }));
  let claims = 0;
  let rounds = 0;
  let overlaps = 0;
  const claimMs: number[] = [];
  const t0 = performance.now();
  const end = t0 + options.seconds * 1000;
  try {
    await Promise.all(stores.flatMap((store, i) =>
      Array.from({ length: loops }, async () => {
        const owner = `bench-${i}`;
        while (performance.now() < end) {
          const c0 = performance.now();
          const got = await store.claim({ now: Date.now(), limit: batch, owner, leaseMs: 60_000 });
          claimMs.push(performance.now() - c0);
          for (const r of got) {
            if (held.has(r.id)) overlaps++;
            held.set(r.id, owner);
          }
          claims += got.length;
          rounds++;
          for (const r of got) held.delete(r.id);
          await store.release(got.map((r) => r.id), owner);
        }
      })
    ));
  } finally {
    await Promise.all(pools.map((sql) => sql.end({ timeout: 5 })));
  }
  const seconds = (performance.now() - t0) / 1000;
  claimMs.sort((a, b) => a - b);
  return {
    nodes: options.nodes,
    claims,
    rounds,
    seconds,
    claimsPerSec: claims / seconds,
    claimP50Ms: claimMs[Math.floor(claimMs.length / 2)] ?? 0,
    overlaps,
  };
}
