/**
 * Chooses the queue backend from config.
 * @module
 */
import { join } from "node:path";
import type { Config } from "../config/mod.ts";
import { openFileStore } from "./file_store.ts";
import { openKvStore } from "./kv_store.ts";
import type { QueueStore } from "./store.ts";

/** Opens the configured queue store under the data directory. */
export function openQueueStore(config: Config): Promise<QueueStore> {
  if (config.queue.backend === "file") {
    return openFileStore(join(config.data_dir, "queue"), { fsync: config.spool.fsync });
  }
  return openKvStore(config.queue.kv_path ?? join(config.data_dir, "queue.kv"));
}
