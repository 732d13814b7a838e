/**
 * The PostgreSQL backend: several Empath nodes share one queue (records, bodies,
 * leases), operator state, cluster-wide limits and node heartbeats in one database.
 * @module
 */
export { ClusterError, type ClusterErrorCode, isConnectionError } from "./errors.ts";
export { type ConnectOptions, connectPostgres } from "./db.ts";
export { migrate, SCHEMA_VERSION } from "./schema.ts";
export { CHUNK_BYTES, createPgStore, type PgQueueStore, type PgStoreOptions, QUEUE_CHANNEL } from "./pg_store.ts";
export { createPgSpool, type PgSpool } from "./pg_spool.ts";
export { defaultNodeId, openPgQueue, type PgQueue, type PgQueueOptions } from "./open.ts";
export {
  type ClusterNode,
  type ClusterNodeOptions,
  type NodeInfo,
  OPERATOR_CHANNEL,
  startClusterNode,
} from "./node.ts";
export { connectionShare, createSharedGate } from "./shared_gate.ts";
export { type SharedOperatorState, shareOperatorState } from "./shared_state.ts";
