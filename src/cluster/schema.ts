/**
 * The database schema, as numbered migrations applied in order at start inside one
 * transaction under an advisory lock (several nodes starting at once migrate once).
 * A database whose version is newer than the newest migration here is refused: an
 * older Empath must not write into a schema it does not know.
 * @module
 */
import type { Sql } from "postgres";
import { ClusterError } from "./errors.ts";

/** Migrations; index + 1 is the schema version. Never edit a released one: append. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE empath_messages (
    id text PRIMARY KEY,
    status text NOT NULL,
    next_attempt_at bigint NOT NULL,
    received_at bigint NOT NULL,
    domains text[] NOT NULL,
    waiting_domains text[] NOT NULL,
    record jsonb NOT NULL,
    lease_owner text,
    lease_until bigint
  );
  -- The claim query's index: scheduled rows only, in due order.
  CREATE INDEX empath_messages_due ON empath_messages (next_attempt_at, id)
    WHERE status IN ('queued', 'deferred');
  CREATE INDEX empath_messages_lease ON empath_messages (lease_owner) WHERE lease_owner IS NOT NULL;
  CREATE TABLE empath_bodies (
    id text NOT NULL REFERENCES empath_messages (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (id, seq)
  );
  ALTER TABLE empath_bodies ALTER COLUMN data SET STORAGE EXTERNAL;
  CREATE TABLE empath_nodes (
    node text PRIMARY KEY,
    hostname text NOT NULL,
    pid integer NOT NULL,
    version text NOT NULL,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    stopped_at timestamptz,
    info jsonb NOT NULL DEFAULT '{}'
  );
  CREATE TABLE empath_operator (
    kind text NOT NULL,
    key text NOT NULL,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
  );
  CREATE TABLE empath_rate (
    domain text PRIMARY KEY,
    tokens double precision NOT NULL,
    refilled_at timestamptz NOT NULL
  );
  CREATE TABLE empath_conn_slots (
    domain text NOT NULL,
    node text NOT NULL,
    active integer NOT NULL,
    PRIMARY KEY (domain, node)
  );
  `,
  `
  -- QueueStore.getState/putState/listState/deleteState: durable operator state (expiry in epoch ms).
  CREATE TABLE empath_state (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    expires_at bigint
  );
  `,
  `
  -- Priority levels (claimed level by level), delivery marks (no double delivery), the event outbox.
  ALTER TABLE empath_messages ADD COLUMN priority text NOT NULL DEFAULT 'normal';
  DROP INDEX empath_messages_due;
  CREATE INDEX empath_messages_due ON empath_messages (priority, next_attempt_at, id)
    WHERE status IN ('queued', 'deferred');
  CREATE TABLE empath_delivered (
    id text NOT NULL,
    recipient text NOT NULL,
    at bigint NOT NULL,
    PRIMARY KEY (id, recipient)
  );
  CREATE INDEX empath_delivered_at ON empath_delivered (at);
  CREATE TABLE empath_outbox (
    id text PRIMARY KEY,
    target text NOT NULL,
    at bigint NOT NULL,
    body text NOT NULL
  );
  CREATE INDEX empath_outbox_target ON empath_outbox (target, id);
  `,
];

/** The schema version this Empath writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Applies missing migrations; returns the version now in force. Throws PG_SCHEMA for a newer database. */
export async function migrate(sql: Sql): Promise<number> {
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext('empath-schema'))`;
    await tx`CREATE TABLE IF NOT EXISTS empath_schema (version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
    const [row] = await tx<{ v: number | null }[]>`SELECT max(version) AS v FROM empath_schema`;
    const current = row?.v ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new ClusterError(
        `the database schema is version ${current}, newer than this Empath's ${SCHEMA_VERSION}: upgrade Empath`,
        "PG_SCHEMA",
      );
    }
    for (let v = current + 1; v <= SCHEMA_VERSION; v++) {
      await tx.unsafe(MIGRATIONS[v - 1]!);
      await tx`INSERT INTO empath_schema (version) VALUES (${v})`;
    }
    return SCHEMA_VERSION;
  });
}
