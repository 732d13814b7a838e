/**
 * One node's presence in the cluster: a heartbeat row in `empath_nodes` (with what it
 * is doing), LISTEN on the queue channel (a commit or a released lease elsewhere wakes
 * this node's scheduler, so idle nodes need not poll hard) and on the operator channel,
 * and the count of live nodes that the shared limits divide by. Rows of nodes silent for
 * `forgetMs` (gone for good: a replaced machine, a container that will not come back)
 * are deleted by whichever node beats next; until then `cluster nodes` shows them dead.
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Sql } from "postgres";
import { QUEUE_CHANNEL } from "./pg_store.ts";

/** The channel operator changes are announced on. */
export const OPERATOR_CHANNEL = "empath_operator";

/** A node as `empathctl cluster nodes` shows it. */
export interface NodeInfo {
  node: string;
  hostname: string;
  pid: number;
  version: string;
  startedAt: number;
  heartbeatAt: number;
  stoppedAt: number | null;
  /** Heartbeat within the last three intervals, not stopped. */
  alive: boolean;
  /** Live leases the node holds now. */
  leases: number;
  info: Record<string, unknown>;
}

/** Options for {@link startClusterNode}. */
export interface ClusterNodeOptions {
  sql: Sql;
  id: string;
  hostname: string;
  version: string;
  heartbeatMs: number;
  /** Delete rows of nodes whose last heartbeat is older than this, ms (default 24 h). */
  forgetMs?: number;
  log: Logger;
  /** Due work may be waiting (a commit or a released lease on some node). */
  wake: () => void;
  /** Operator state changed somewhere (also called on every heartbeat as a safety net). */
  operatorChanged: () => void;
  /** Extra facts stored with the heartbeat (in-flight count, addresses). */
  info?: () => Record<string, unknown>;
}

/** The running presence. */
export interface ClusterNode {
  readonly id: string;
  /** Live nodes at the last heartbeat (at least 1: this one). */
  liveNodes(): number;
  /** Every node that ever joined, with its leases and last heartbeat. */
  nodes(): Promise<NodeInfo[]>;
  /** The last heartbeat's error, or undefined when it succeeded. */
  lastError(): string | undefined;
  stop(): Promise<void>;
}

/** Registers this node, starts heartbeats and listeners. */
export async function startClusterNode(options: ClusterNodeOptions): Promise<ClusterNode> {
  const { sql, id, log } = options;
  const staleMs = options.heartbeatMs * 3;
  const forgetMs = Math.max(options.forgetMs ?? 86_400_000, staleMs);
  let live = 1;
  let error: string | undefined;
  let stopped = false;

  async function beat() {
    const info = sql.json(JSON.parse(JSON.stringify(options.info?.() ?? {})));
    await sql`
      INSERT INTO empath_nodes (node, hostname, pid, version, started_at, heartbeat_at, info)
      VALUES (${id}, ${options.hostname}, ${Deno.pid}, ${options.version}, now(), now(), ${info})
      ON CONFLICT (node) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL, info = excluded.info`;
    const [row] = await sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM empath_nodes
      WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => ${staleMs / 1000})`;
    live = Math.max(1, row?.n ?? 1);
    const gone = await sql<{ node: string }[]>`
      DELETE FROM empath_nodes WHERE node <> ${id} AND heartbeat_at < now() - make_interval(secs => ${forgetMs / 1000})
      RETURNING node`;
    for (const g of gone) log.info("forgot node {node}: no heartbeat for {s} s", { node: g.node, s: forgetMs / 1000 });
  }
  const tick = async () => {
    try {
      await beat();
      if (error) log.info("PostgreSQL reachable again; delivery resumes");
      error = undefined;
    } catch (err) {
      if (!error) log.error("PostgreSQL unreachable: {error}", { error: (err as Error).message });
      error = (err as Error).message;
    }
    options.operatorChanged();
  };
  await beat();
  const timer = setInterval(() => void tick(), options.heartbeatMs);
  Deno.unrefTimer(timer);
  const queueListen = await sql.listen(QUEUE_CHANNEL, () => options.wake());
  const operatorListen = await sql.listen(OPERATOR_CHANNEL, () => options.operatorChanged());

  return {
    id,
    liveNodes: () => live,
    lastError: () => error,
    async nodes() {
      const rows = await sql<
        {
          node: string;
          hostname: string;
          pid: number;
          version: string;
          started_at: Date;
          heartbeat_at: Date;
          stopped_at: Date | null;
          alive: boolean;
          leases: number;
          info: Record<string, unknown>;
        }[]
      >`
        SELECT n.*, (n.stopped_at IS NULL AND n.heartbeat_at > now() - make_interval(secs => ${staleMs / 1000}))
               AS alive,
               (SELECT count(*)::int FROM empath_messages m WHERE m.lease_owner = n.node AND m.lease_until > ${Date.now()})
               AS leases
        FROM empath_nodes n ORDER BY n.node`;
      return rows.map((r) => ({
        node: r.node,
        hostname: r.hostname,
        pid: r.pid,
        version: r.version,
        startedAt: r.started_at.getTime(),
        heartbeatAt: r.heartbeat_at.getTime(),
        stoppedAt: r.stopped_at?.getTime() ?? null,
        alive: r.alive,
        leases: r.leases,
        info: r.info,
      }));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await queueListen.unlisten().catch(() => {});
      await operatorListen.unlisten().catch(() => {});
      await sql`UPDATE empath_nodes SET stopped_at = now() WHERE node = ${id}`.catch(() => {});
    },
  };
}
