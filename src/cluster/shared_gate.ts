/**
 * Cluster-wide destination limits for {@link DestinationLimits.shared}:
 * - message rates come from one token bucket per domain in `empath_rate`, refilled by the
 *   database clock. A node takes one token per round trip and may reserve a future one
 *   (the bucket goes negative): the answer says when that token is due, and the node waits
 *   until then. No token is handed out twice, so the cluster's rate holds whatever the
 *   number of nodes. At most one request per domain is in flight per node.
 * - connection limits are divided among the live nodes: each gets ⌊max / nodes⌋, at least
 *   1, so the nodes together never open more than `max` connections to a domain while
 *   there are at most `max` live nodes (with more nodes than `max`, each still gets one).
 *   The split is static, not counted in the database: a connection slot is taken on the
 *   delivery hot path (synchronously, no round trip), a SIGKILLed node leaves no slots
 *   behind to expire, and the bound holds without the database. Its price: a node with no
 *   mail for a domain leaves its share unused, and for one heartbeat after a node joins,
 *   the others still divide by the old count (docs/SCALING.md).
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Sql } from "postgres";
import type { AcquireVerdict, SharedGate } from "../delivery/mod.ts";

interface DomainTokens {
  /** A token this node holds, usable from `readyAt`. */
  held: boolean;
  readyAt: number;
  pending: boolean;
}

/** One node's share of a domain's connection limit `max` among `nodes` live nodes. */
export function connectionShare(max: number, nodes: number): number {
  return Math.max(1, Math.floor(max / Math.max(1, nodes)));
}

/** Creates the gate; `liveNodes` is the heartbeat's count. */
export function createSharedGate(sql: Sql, liveNodes: () => number, log: Logger): SharedGate {
  const domains = new Map<string, DomainTokens>();

  async function fetchToken(domain: string, rate: number, state: DomainTokens) {
    const burst = Math.max(1, rate);
    try {
      const [row] = await sql<{ tokens: number }[]>`
        INSERT INTO empath_rate AS r (domain, tokens, refilled_at) VALUES (${domain}, ${burst - 1}, clock_timestamp())
        ON CONFLICT (domain) DO UPDATE SET
          tokens = least(${burst}::float8, r.tokens + extract(epoch FROM clock_timestamp() - r.refilled_at) * ${rate}) - 1,
          refilled_at = clock_timestamp()
        RETURNING tokens`;
      const tokens = row?.tokens ?? 0;
      state.held = true;
      state.readyAt = Date.now() + (tokens >= 0 ? 0 : Math.ceil((-tokens / rate) * 1000));
    } catch (err) {
      log.warning("cluster rate token for {domain} failed: {error}", { domain, error: (err as Error).message });
      state.readyAt = Date.now() + 1000;
    } finally {
      state.pending = false;
    }
  }

  return {
    connectionShare: (_domain, max) => connectionShare(max, liveNodes()),
    takeToken(domain, rate, now): AcquireVerdict {
      let state = domains.get(domain);
      if (!state) domains.set(domain, state = { held: false, readyAt: 0, pending: false });
      if (state.held && now >= state.readyAt) {
        state.held = false;
        return { ok: true };
      }
      if (!state.held && !state.pending && now >= state.readyAt) {
        state.pending = true;
        void fetchToken(domain, rate, state);
      }
      return { ok: false, reason: "rate", retryAt: Math.max(now + 5, state.held ? state.readyAt : now + 5) };
    },
  };
}
