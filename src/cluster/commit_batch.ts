/**
 * Group commit of new messages: records and bodies that arrive while a commit is in
 * flight wait and go together in the next transaction — one WAL flush for many
 * messages, as the local spool's segments share one fdatasync. Each message is
 * committed whole (record + every body chunk) in the transaction that makes it
 * exist; when a grouped transaction fails for another reason than a lost connection,
 * its messages are retried one by one so one bad record cannot fail its neighbours.
 * @module
 */
import type { Sql, TransactionSql } from "postgres";
import type { QueueRecord } from "../queue/mod.ts";
import { isConnectionError } from "./errors.ts";

/** Where a new message's body comes from: chunks read in order, never the whole body at once. */
export type BodySource = () => AsyncIterable<Uint8Array>;

/** One message to commit. */
export interface NewMessage {
  record: QueueRecord;
  body?: BodySource;
  /** The lease the receiving node takes on it (it delivers it at once). */
  lease?: { owner: string; until: number };
}

/** Writes one message's rows inside `tx`. */
export type WriteMessage = (tx: TransactionSql, message: NewMessage) => Promise<void>;

/** Commits messages in groups of at most `maxBatch`. */
export interface CommitBatcher {
  commit(message: NewMessage): Promise<void>;
  /** Transactions committed and messages in them (for metrics and benchmarks). */
  stats(): { transactions: number; messages: number };
}

interface Waiting {
  message: NewMessage;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Creates the batcher; `afterCommit` runs inside each transaction last (e.g. NOTIFY). */
export function createCommitBatcher(
  sql: Sql,
  write: WriteMessage,
  options: { maxBatch?: number; afterCommit?: (tx: TransactionSql) => Promise<unknown> } = {},
): CommitBatcher {
  const maxBatch = options.maxBatch ?? 64;
  const waiting: Waiting[] = [];
  let running = false;
  let transactions = 0;
  let messages = 0;

  async function run(batch: Waiting[]) {
    await sql.begin(async (tx) => {
      for (const w of batch) await write(tx, w.message);
      if (options.afterCommit) await options.afterCommit(tx);
    });
    transactions++;
    messages += batch.length;
  }

  async function drain() {
    running = true;
    try {
      while (waiting.length > 0) {
        const batch = waiting.splice(0, maxBatch);
        try {
          await run(batch);
          for (const w of batch) w.resolve();
        } catch (err) {
          if (batch.length === 1 || isConnectionError(err)) {
            for (const w of batch) w.reject(err);
            continue;
          }
          for (const w of batch) await run([w]).then(w.resolve, w.reject);
        }
      }
    } finally {
      running = false;
    }
  }

  return {
    commit(message) {
      const done = Promise.withResolvers<void>();
      waiting.push({ message, resolve: done.resolve, reject: done.reject });
      if (!running) void drain();
      return done.promise;
    },
    stats: () => ({ transactions, messages }),
  };
}
