/**
 * Joins a node to the cluster of a postgres-backed queue: heartbeats, LISTEN wake-ups,
 * shared operator state written through the engine the control plane gets, and the
 * cluster-wide destination limits.
 * @module
 */
import type { DeliveryEngine } from "../delivery/mod.ts";
import {
  type ClusterNode,
  createSharedGate,
  type NodeInfo,
  type PgQueue,
  shareOperatorState,
  startClusterNode,
} from "../cluster/mod.ts";
import { logger } from "../observability/log.ts";
import { VERSION } from "../version.ts";

/** A node's membership. */
export interface ClusterMembership {
  node: ClusterNode;
  /** The engine for the control plane (operator changes are shared). */
  engine: DeliveryEngine;
  /** Readiness: fails with the reason while PostgreSQL cannot be reached. */
  ready(): Promise<void>;
  nodes(): Promise<NodeInfo[]>;
  stop(): Promise<void>;
}

/** Starts heartbeats and listeners, applies the shared operator state, installs the shared limits. */
export async function joinCluster(
  pg: PgQueue,
  delivery: DeliveryEngine,
  options: { hostname: string; heartbeat: number; node_forget: number },
): Promise<ClusterMembership> {
  const log = logger("cluster");
  const state = shareOperatorState(pg.sql, delivery, log);
  const node = await startClusterNode({
    sql: pg.sql,
    id: pg.owner,
    hostname: options.hostname,
    version: VERSION,
    heartbeatMs: options.heartbeat,
    forgetMs: options.node_forget,
    log,
    wake: () => delivery.wake(),
    operatorChanged: () => void state.sync(),
    info: () => ({ inFlight: delivery.inFlight().length, frozen: delivery.frozen }),
  });
  delivery.limits.shared = createSharedGate(pg.sql, node.liveNodes, log);
  await state.sync();
  log.info("joined the cluster as {node} ({n} live nodes)", { node: node.id, n: node.liveNodes() });
  return {
    node,
    engine: state.engine,
    async ready() {
      try {
        await pg.sql`SELECT 1`;
      } catch (err) {
        throw new Error(`PostgreSQL unreachable: ${(err as Error).message}; new mail gets 451, delivery paused`);
      }
    },
    nodes: () => node.nodes(),
    stop: () => node.stop(),
  };
}
