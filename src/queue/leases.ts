/**
 * Leases for the local backends. A lease marks a record as being worked on by one
 * owner until a deadline, so several workers (or, with a shared backend, several
 * nodes) never take the same due record at once. The KV and file stores belong to
 * one process, so their leases live in memory and vanish on restart — which is
 * what an expired lease means anyway.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newQueueRecord } from "./submit.ts";
 * import { createLeaseTable } from "./leases.ts"; // @ts-ignore deno#26900
 *
 * const envelope = { sender: "", recipients: [{ address: "bob@example.net" }], client: { address: "127.0.0.1", listener: "mx" } };
 * const record = newQueueRecord({ id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R", size: 20 }, envelope, 0);
 * const due = () => Promise.resolve([record]); // a store's due(now, limit)
 * const leases = createLeaseTable();
 * const mine = await leases.claim({ now: 1000, limit: 10, owner: "a", leaseMs: 60_000 }, due);
 * assert.equal(mine.length, 1);
 * assert.equal((await leases.claim({ now: 1000, limit: 10, owner: "b", leaseMs: 60_000 }, due)).length, 0);
 * leases.release(mine.map((r) => r.id), "a");
 * ```
 * @module
 */
import type { ClaimOptions } from "./store.ts";
import type { QueueRecord } from "./types.ts";

/** In-memory leases of one local store. */
export interface LeaseTable {
  /**
   * Reads due records with `due` and leases up to `limit` of them to `owner`,
   * skipping records under a live lease (any owner's, the caller's included).
   */
  claim(
    options: ClaimOptions,
    due: (now: number, limit: number) => Promise<QueueRecord[]>,
  ): Promise<QueueRecord[]>;
  /** Extends the live leases `owner` holds among `ids`; returns those ids. */
  renew(ids: string[], owner: string, leaseMs: number, now: number): string[];
  /** Ends the leases `owner` holds among `ids` (others' leases are left alone). */
  release(ids: string[], owner: string): void;
  /** Drops any lease on `id` (the record was deleted). */
  forget(id: string): void;
  /** True while anyone holds a live lease on `id` (lets a store skip leased records before reading them). */
  held(id: string, now: number): boolean;
}

interface Lease {
  owner: string;
  until: number;
}

/** Creates an empty lease table. A lease is live while `now < until`. */
export function createLeaseTable(): LeaseTable {
  const leases = new Map<string, Lease>();
  const live = (id: string, now: number): Lease | undefined => {
    const lease = leases.get(id);
    return lease && lease.until > now ? lease : undefined;
  };

  return {
    async claim({ now, limit, owner, leaseMs }, due) {
      if (limit <= 0) return [];
      // Drop expired leases; the live ones may hide at most that many due records.
      let held = 0;
      for (const [id, lease] of leases) {
        if (lease.until <= now) leases.delete(id);
        else held++;
      }
      const candidates = await due(now, limit + held);
      // No await from here on: checking and taking a lease is one step.
      const out: QueueRecord[] = [];
      for (const record of candidates) {
        if (out.length >= limit) break;
        if (live(record.id, now)) continue;
        leases.set(record.id, { owner, until: now + leaseMs });
        out.push(record);
      }
      return out;
    },
    renew(ids, owner, leaseMs, now) {
      const kept: string[] = [];
      for (const id of ids) {
        const lease = live(id, now);
        if (lease?.owner !== owner) continue;
        lease.until = now + leaseMs;
        kept.push(id);
      }
      return kept;
    },
    release(ids, owner) {
      for (const id of ids) {
        if (leases.get(id)?.owner === owner) leases.delete(id);
      }
    },
    forget(id) {
      leases.delete(id);
    },
    held(id, now) {
      return live(id, now) !== undefined;
    },
  };
}
