/**
 * The QueueStore on PostgreSQL: one row per message (the record as jsonb plus the
 * columns the queries need), leases as two columns (owner, expiry) taken with
 * `FOR UPDATE SKIP LOCKED` over a partial index of the scheduled rows, so any number
 * of nodes claim disjoint batches without waiting on each other. A new message's
 * record and body are written in one transaction by the group committer
 * ({@link createCommitBatcher}); updates are single-row upserts that keep the lease.
 * @module
 */
import type { Sql, TransactionSql } from "postgres";
import {
  type ClaimOptions,
  emptyCounts,
  type MessageStatus,
  type OutboxEntry,
  type Priority,
  type QueueFilter,
  type QueueRecord,
  type QueueStats,
  type QueueStore,
  QueueStoreError,
  type StateEntry,
  type StateValue,
} from "../queue/mod.ts";
import { type BodySource, createCommitBatcher, type NewMessage } from "./commit_batch.ts";

/** Body chunks are at most this large (one bytea row each). */
export const CHUNK_BYTES = 256 * 1024;
/** The channel nodes LISTEN on: a payload-less "there may be due work". */
export const QUEUE_CHANNEL = "empath_queue";

/** What the store needs besides the pool. */
export interface PgStoreOptions {
  /** This node's lease owner id (the scheduler's). */
  owner: string;
  /** The lease a receiving node takes on a message it just accepted. */
  leaseMs: number;
  /** The body of a message accepted but not yet committed, if `id` is one. */
  takeBody?: (id: string) => BodySource | undefined;
  /** Told after a message is committed (its staged body may go). */
  committed?: (id: string) => void;
  /** Runs at close (the owner of the pool ends it). */
  onClose?: () => Promise<void>;
}

/** The PostgreSQL QueueStore, with its group-commit counters. */
export interface PgQueueStore extends QueueStore {
  commitStats(): { transactions: number; messages: number };
}

const FINAL = new Set(["delivered", "failed", "relayed", "expanded"]);

function domainsOf(record: QueueRecord): { all: string[]; waiting: string[] } {
  const all = new Set<string>();
  const waiting = new Set<string>();
  for (const r of record.recipients) {
    const d = r.address.slice(r.address.lastIndexOf("@") + 1).toLowerCase();
    all.add(d);
    if (!FINAL.has(r.status)) waiting.add(d);
  }
  return { all: [...all], waiting: [...waiting] };
}

function toStoreError(err: unknown, what: string): QueueStoreError {
  if (err instanceof QueueStoreError) return err;
  return new QueueStoreError(`${what}: ${(err as Error)?.message ?? String(err)}`, "QUEUE_IO", { cause: err });
}

/** Opens the store over an open pool (the schema is migrated by connectPostgres). */
export function createPgStore(sql: Sql, options: PgStoreOptions): PgQueueStore {
  let closed = false;
  const guard = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    if (closed) throw new QueueStoreError("queue store is closed", "QUEUE_CLOSED");
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(err, what);
    }
  };

  async function upsert(q: Sql | TransactionSql, record: QueueRecord, lease?: { owner: string; until: number }) {
    const { all, waiting } = domainsOf(record);
    await q`
      INSERT INTO empath_messages
        (id, status, next_attempt_at, received_at, domains, waiting_domains, record, lease_owner, lease_until,
         priority)
      VALUES (${record.id}, ${record.status}, ${record.nextAttemptAt}, ${record.receivedAt}, ${all}, ${waiting},
              ${q.json(JSON.parse(JSON.stringify(record)))}, ${lease?.owner ?? null}, ${lease?.until ?? null},
              ${record.priority ?? "normal"})
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, next_attempt_at = excluded.next_attempt_at,
        received_at = excluded.received_at, domains = excluded.domains,
        waiting_domains = excluded.waiting_domains, record = excluded.record, priority = excluded.priority`;
  }

  async function writeNew(tx: TransactionSql, message: NewMessage) {
    await upsert(tx, message.record, message.lease);
    if (!message.body) return;
    await tx`DELETE FROM empath_bodies WHERE id = ${message.record.id}`;
    let seq = 0;
    for await (const chunk of message.body()) {
      await tx`INSERT INTO empath_bodies (id, seq, data) VALUES (${message.record.id}, ${seq++}, ${chunk})`;
    }
  }

  const batcher = createCommitBatcher(sql, writeNew, {
    afterCommit: (tx) => tx`SELECT pg_notify(${QUEUE_CHANNEL}, '')`,
  });

  const records = (rows: { record: QueueRecord }[]) => rows.map((r) => r.record);

  /** Writes of one state key run in call order (the pool would otherwise reorder them: last put must win). */
  const stateWrites = new Map<string, Promise<void>>();
  const inOrder = (key: string, write: () => Promise<void>): Promise<void> => {
    const next = (stateWrites.get(key) ?? Promise.resolve()).then(write, write);
    const tail = next.catch(() => {});
    stateWrites.set(key, tail);
    void tail.then(() => stateWrites.get(key) === tail && stateWrites.delete(key));
    return next;
  };

  return {
    backend: "postgres",
    getState: (key) =>
      guard("state read failed", async () => {
        const [row] = await sql<{ value: StateValue }[]>`
          SELECT value FROM empath_state WHERE key = ${key} AND (expires_at IS NULL OR expires_at > ${Date.now()})`;
        return row?.value ?? null;
      }),
    putState: (key, value, expiresAt) =>
      inOrder(key, () =>
        guard("state write failed", async () => {
          await sql`
          INSERT INTO empath_state (key, value, expires_at) VALUES (${key}, ${sql.json(value)}, ${expiresAt ?? null})
          ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`;
        })),
    listState: (prefix) =>
      guard("state read failed", async () => {
        const rows = await sql<{ key: string; value: StateValue; expires_at: string | null }[]>`
          SELECT key, value, expires_at FROM empath_state
          WHERE starts_with(key, ${prefix}) AND (expires_at IS NULL OR expires_at > ${Date.now()})
          ORDER BY key`;
        return rows.map((r): StateEntry =>
          r.expires_at === null ? { key: r.key, value: r.value } : {
            key: r.key,
            value: r.value,
            expiresAt: Number(r.expires_at),
          }
        );
      }),
    deleteState: (key) =>
      inOrder(
        key,
        () => guard("state delete failed", async () => void await sql`DELETE FROM empath_state WHERE key = ${key}`),
      ),
    put: (record) =>
      guard("queue write failed", async () => {
        const body = options.takeBody?.(record.id);
        if (!body) return await upsert(sql, record);
        const until = Date.now() + options.leaseMs;
        await batcher.commit({ record, body, lease: { owner: options.owner, until } });
        options.committed?.(record.id);
      }),
    get: (id) =>
      guard("queue read failed", async () => {
        const [row] = await sql<{ record: QueueRecord }[]>`SELECT record FROM empath_messages WHERE id = ${id}`;
        return row?.record ?? null;
      }),
    delete: (id) =>
      guard("queue delete failed", async () => void await sql`DELETE FROM empath_messages WHERE id = ${id}`),
    due: (now, limit, priority) =>
      guard("queue read failed", async () =>
        records(
          await sql<{ record: QueueRecord }[]>`
          SELECT record FROM empath_messages WHERE status IN ('queued', 'deferred') AND next_attempt_at <= ${now}
            ${priority ? sql`AND priority = ${priority}` : sql``}
          ORDER BY next_attempt_at, id LIMIT ${limit}`,
        )),
    claim: ({ now, limit, owner, leaseMs, priority }: ClaimOptions) =>
      guard("queue claim failed", async () => {
        if (limit <= 0) return [];
        const rows = await sql<{ record: QueueRecord }[]>`
          WITH c AS (
            SELECT id FROM empath_messages
            WHERE status IN ('queued', 'deferred') AND next_attempt_at <= ${now}
              AND (lease_until IS NULL OR lease_until <= ${now})
              ${priority ? sql`AND priority = ${priority}` : sql``}
            ORDER BY next_attempt_at, id LIMIT ${limit}
            FOR UPDATE SKIP LOCKED)
          UPDATE empath_messages m SET lease_owner = ${owner}, lease_until = ${now + leaseMs}
          FROM c WHERE m.id = c.id RETURNING m.record`;
        return records(rows).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : 1));
      }),
    renew: (ids, owner, leaseMs, now) =>
      guard("lease renewal failed", async () => {
        if (ids.length === 0) return [];
        const rows = await sql<{ id: string }[]>`
          UPDATE empath_messages SET lease_until = ${now + leaseMs}
          WHERE id = ANY(${ids}) AND lease_owner = ${owner} AND lease_until > ${now} RETURNING id`;
        const held = new Set(rows.map((r) => r.id));
        return ids.filter((id) => held.has(id));
      }),
    release: (ids, owner) =>
      guard("lease release failed", async () => {
        if (ids.length === 0) return;
        const rows = await sql`
          UPDATE empath_messages SET lease_owner = NULL, lease_until = NULL
          WHERE id = ANY(${ids}) AND lease_owner = ${owner} RETURNING id`;
        if (rows.length > 0) await sql`SELECT pg_notify(${QUEUE_CHANNEL}, '')`;
      }),
    nextDueAt: () =>
      guard("queue read failed", async () => {
        const [row] = await sql<{ due: number | null }[]>`
          SELECT min(next_attempt_at) AS due FROM empath_messages WHERE status IN ('queued', 'deferred')`;
        return row?.due ?? null;
      }),
    async *list(filter: QueueFilter = {}) {
      if (closed) throw new QueueStoreError("queue store is closed", "QUEUE_CLOSED");
      const limit = filter.limit ?? null;
      const status = filter.status ?? null;
      const domain = filter.domain?.toLowerCase() ?? null;
      const priority = filter.priority ?? null;
      const cursor = sql<{ record: QueueRecord }[]>`
        SELECT record FROM empath_messages
        WHERE (${status}::text IS NULL OR status = ${status}) AND (${domain}::text IS NULL OR ${domain} = ANY(domains))
          AND (${priority}::text IS NULL OR priority = ${priority})
        ORDER BY id LIMIT ${limit}`.cursor(200);
      try {
        for await (const rows of cursor) yield* records(rows);
      } catch (err) {
        throw toStoreError(err, "queue list failed");
      }
    },
    counts: () =>
      guard("queue read failed", async () => {
        const counts = emptyCounts();
        const rows = await sql<{ status: MessageStatus; n: number }[]>`
          SELECT status, count(*)::int AS n FROM empath_messages GROUP BY status`;
        for (const r of rows) counts[r.status] = r.n;
        return counts;
      }),
    stats: () =>
      guard("queue read failed", async () => {
        const counts = emptyCounts();
        for (
          const r of await sql<{ status: MessageStatus; n: number }[]>`
          SELECT status, count(*)::int AS n FROM empath_messages GROUP BY status`
        ) counts[r.status] = r.n;
        const [oldest] = await sql<{ at: number | null }[]>`SELECT min(received_at) AS at FROM empath_messages`;
        const domains: QueueStats["domains"] = {};
        for (
          const r of await sql<{ domain: string; n: number; at: number }[]>`
          SELECT d AS domain, count(*)::int AS n, min(received_at) AS at
          FROM empath_messages, unnest(waiting_domains) AS d GROUP BY d`
        ) domains[r.domain] = { messages: r.n, oldestReceivedAt: r.at };
        const priorities: QueueStats["priorities"] = { critical: 0, high: 0, normal: 0, low: 0 };
        for (
          const r of await sql<{ priority: Priority; n: number }[]>`
          SELECT priority, count(*)::int AS n FROM empath_messages GROUP BY priority`
        ) priorities[r.priority] = r.n;
        return { counts, oldestReceivedAt: oldest?.at ?? null, domains, priorities };
      }),
    markDelivered: (marks) =>
      guard("delivery mark write failed", async () => {
        if (marks.length === 0) return;
        await sql`
          INSERT INTO empath_delivered ${sql(marks.map((m) => ({ id: m.id, recipient: m.recipient, at: m.at })))}
          ON CONFLICT (id, recipient) DO NOTHING`;
      }),
    deliveredOf: (id) =>
      guard(
        "delivery mark read failed",
        async () =>
          (await sql<{ recipient: string }[]>`SELECT recipient FROM empath_delivered WHERE id = ${id}`)
            .map((r) => r.recipient),
      ),
    pruneDelivered: (before, keep) =>
      guard("delivery mark prune failed", async () => {
        const old = await sql`DELETE FROM empath_delivered WHERE at < ${before}`;
        const extra = await sql`
          DELETE FROM empath_delivered WHERE (id, recipient) IN (
            SELECT id, recipient FROM empath_delivered ORDER BY at DESC, id DESC OFFSET ${keep})`;
        return old.count + extra.count;
      }),
    outboxAdd: (entries) =>
      guard("outbox write failed", async () => {
        if (entries.length === 0) return;
        await sql`INSERT INTO empath_outbox ${
          sql(entries.map((e) => ({ id: e.id, target: e.target, at: e.at, body: e.body })))
        } ON CONFLICT (id) DO NOTHING`;
      }),
    outboxPeek: (target, limit) =>
      guard("outbox read failed", async () =>
        (await sql<{ id: string; target: string; at: string; body: string }[]>`
          SELECT id, target, at, body FROM empath_outbox WHERE target = ${target} ORDER BY id LIMIT ${limit}`)
          .map((r): OutboxEntry => ({ id: r.id, target: r.target, at: Number(r.at), body: r.body }))),
    outboxRemove: (ids) =>
      guard("outbox delete failed", async () => {
        if (ids.length > 0) await sql`DELETE FROM empath_outbox WHERE id = ANY(${ids})`;
      }),
    outboxStats: () =>
      guard("outbox read failed", async () => {
        const [row] = await sql<{ depth: number; oldest: string | null }[]>`
          SELECT count(*)::int AS depth, min(at) AS oldest FROM empath_outbox`;
        return { depth: row?.depth ?? 0, oldestAt: row?.oldest == null ? null : Number(row.oldest) };
      }),
    probe: () => guard("queue probe failed", async () => void await sql`SELECT 1`),
    async close() {
      if (closed) return;
      closed = true;
      await options.onClose?.();
    },
    commitStats: () => batcher.stats(),
  };
}
