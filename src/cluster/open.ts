/**
 * Opens the PostgreSQL backend of one node: the pool (migrated), the queue store and
 * the body spool that share it, and a local staging spool for messages being received.
 *
 * @example
 * (Not run as a doc test: it needs a PostgreSQL server.)
 * ```ts ignore
 * const pg = await openPgQueue({ url: "postgres://empath@db/empath", stagingDir: "/var/lib/empath/staging" });
 * // pg.store is a QueueStore, pg.spool a Spool; both see the whole cluster's queue.
 * await pg.store.close(); // ends the pool too
 * ```
 * @module
 */
import type { Sql } from "postgres";
import { openSpool } from "../spool/mod.ts";
import { guardPostgresClient } from "./client_guard.ts";
import { type ConnectOptions, connectPostgres } from "./db.ts";
import { createPgSpool, type PgSpool } from "./pg_spool.ts";
import { createPgStore, type PgQueueStore } from "./pg_store.ts";

/** Options for {@link openPgQueue}. */
export interface PgQueueOptions {
  url?: string;
  poolSize?: number;
  /** Where messages are staged while received (local; removed and recreated at open). */
  stagingDir: string;
  /** This node's lease owner id (default {@link defaultNodeId}). */
  owner?: string;
  /** Lease of a message this node just accepted (default 5 minutes, the scheduler's). */
  leaseMs?: number;
  /** Keep retrying an unreachable server at open this long, ms (default 0). */
  connectWaitMs?: number;
  /** Told before each retry of an unreachable server at open. */
  onConnectRetry?: ConnectOptions["onRetry"];
  /** Told when the client's known write-after-close fault was stopped (see client_guard.ts). */
  onClientFault?: (error: Error) => void;
}

/** The open backend. */
export interface PgQueue {
  sql: Sql;
  store: PgQueueStore;
  spool: PgSpool;
  owner: string;
}

/** `<hostname>:<pid>`, the scheduler's default lease owner. */
export function defaultNodeId(): string {
  let host = "localhost";
  try {
    host = Deno.hostname();
  } catch { /* no --allow-sys=hostname */ }
  return `${host}:${Deno.pid}`;
}

/** Connects, migrates, and builds store and spool. Nothing staged survives a restart: it was never acknowledged. */
export async function openPgQueue(options: PgQueueOptions): Promise<PgQueue> {
  guardPostgresClient((err) => options.onClientFault?.(err));
  const sql = await connectPostgres({
    url: options.url,
    poolSize: options.poolSize,
    waitMs: options.connectWaitMs,
    onRetry: options.onConnectRetry,
  });
  await Deno.remove(options.stagingDir, { recursive: true }).catch(() => {});
  const staging = await openSpool(options.stagingDir, { fsync: false });
  const spool = createPgSpool(sql, staging);
  const owner = options.owner ?? defaultNodeId();
  const store = createPgStore(sql, {
    owner,
    leaseMs: options.leaseMs ?? 300_000,
    takeBody: spool.takeBody,
    committed: spool.committed,
    onClose: () => sql.end({ timeout: 5 }),
  });
  return { sql, store, spool, owner };
}
