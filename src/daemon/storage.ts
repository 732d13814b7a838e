/**
 * Opens where messages live: the local spool and queue store (and recovers them after a crash),
 * or, with `queue.backend = "postgres"`, the cluster's database, which holds records, bodies and
 * leases (nothing local to recover; waiting up to `queue.connect_wait` for the server).
 *
 * @module
 */
import { join } from "node:path";
import type { Logger } from "@logtape/logtape";
import { type Config, ConfigError } from "../config/mod.ts";
import { openPgQueue, type PgQueue } from "../cluster/mod.ts";
import { logger } from "../observability/log.ts";
import { openQueueStore, type QueueStore, recoverQueue, type RecoveryReport } from "../queue/mod.ts";
import { openSpool, type Spool } from "../spool/mod.ts";

/** The opened storage. */
export interface Storage {
  pg?: PgQueue;
  spool: Spool;
  store: QueueStore;
  recovery: RecoveryReport;
}

/** Opens (and on local backends recovers) the spool and queue store. */
export async function openStorage(config: Config, dataDir: string, configPath: string, log: Logger): Promise<Storage> {
  // queue.backend = "postgres": records, bodies and leases are the cluster's; nothing local to recover.
  const pg = config.queue.backend === "postgres"
    ? await openPgQueue({
      url: config.queue.url,
      poolSize: config.queue.pool_size,
      stagingDir: join(dataDir, "staging"),
      leaseMs: config.queue.lease,
      connectWaitMs: config.queue.connect_wait,
      onClientFault: (err) =>
        log.warning("PostgreSQL client fault after a lost connection, stopped: {error}", { error: err.message }),
      onConnectRetry: (r) =>
        log.warning("PostgreSQL unreachable at start: {error}; retry {attempt} in {retryInMs} ms", r),
    }).catch((err) => {
      throw new ConfigError(`cannot open queue.backend = "postgres": ${(err as Error).message}`, configPath);
    })
    : undefined;
  const spool: Spool = pg?.spool ?? await openSpool(join(dataDir, "spool"), { fsync: config.spool.fsync });
  const store: QueueStore = pg?.store ?? await openQueueStore({ ...config, data_dir: dataDir });
  const recovery = pg
    ? { partialRemoved: 0, orphansRemoved: 0, requeued: 0, missingData: 0, total: 0 }
    : await recoverQueue(spool, store, logger("queue"));
  log.info(
    "queue recovered: {total} records, {requeued} requeued, {orphans} orphans and {partial} partial writes removed",
    {
      total: recovery.total,
      requeued: recovery.requeued,
      orphans: recovery.orphansRemoved,
      partial: recovery.partialRemoved,
    },
  );
  return { pg, spool, store, recovery };
}
