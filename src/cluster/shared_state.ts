/**
 * Operator state shared by all nodes: the global freeze, domain suspensions, runtime
 * MX overrides and runtime rate limits live in `empath_operator`. A change made on any
 * node (through the wrapped engine the control plane gets) is written there and
 * announced with NOTIFY; every node then reads the table and applies it to its own
 * engine — also on each heartbeat, in case a notification was missed.
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Sql } from "postgres";
import type { DeliveryEngine, DestinationLimits } from "../delivery/mod.ts";
import { OPERATOR_CHANNEL } from "./node.ts";

type Kind = "freeze" | "suspend" | "override" | "rate";

/** The shared state and the engine view that writes through to it. */
export interface SharedOperatorState {
  /** The engine for the control plane: its operator changes go to the database. */
  engine: DeliveryEngine;
  /** Reads the table and applies it to the local engine. */
  sync(): Promise<void>;
}

/** Wraps `engine`; call sync() once at start and whenever the state may have changed. */
export function shareOperatorState(sql: Sql, engine: DeliveryEngine, log: Logger): SharedOperatorState {
  const appliedOverrides = new Set<string>();
  const appliedRates = new Set<string>();
  let syncing: Promise<void> | undefined;
  let again = false;

  async function write(kind: Kind, key: string, value: unknown | null) {
    try {
      if (value === null) await sql`DELETE FROM empath_operator WHERE kind = ${kind} AND key = ${key}`;
      else {
        await sql`
          INSERT INTO empath_operator (kind, key, value) VALUES (${kind}, ${key}, ${sql.json(value as never)})
          ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, updated_at = now()`;
      }
      await sql`SELECT pg_notify(${OPERATOR_CHANNEL}, ${kind})`;
    } catch (err) {
      log.error("sharing operator change {kind} {key} failed (applied on this node only): {error}", {
        kind,
        key,
        error: (err as Error).message,
      });
    }
  }

  async function apply() {
    const rows = await sql<{ kind: Kind; key: string; value: Record<string, unknown> }[]>`
      SELECT kind, key, value FROM empath_operator`;
    const now = Date.now();
    let frozen = false;
    const suspended = new Map<string, number>();
    const overrides = new Map<string, { host: string; port: number }>();
    const rates = new Map<string, number>();
    for (const r of rows) {
      if (r.kind === "freeze") frozen = r.value.frozen === true;
      else if (r.kind === "suspend" && Number(r.value.until) > now) suspended.set(r.key, Number(r.value.until));
      else if (r.kind === "override") overrides.set(r.key, { host: String(r.value.host), port: Number(r.value.port) });
      else if (r.kind === "rate") rates.set(r.key, Number(r.value.rate));
    }
    if (engine.frozen !== frozen) engine.setFrozen(frozen);
    for (const s of engine.limits.suspensions(now)) {
      if (!suspended.has(s.domain)) engine.limits.suspend(s.domain, 0);
    }
    for (const [domain, until] of suspended) engine.limits.suspend(domain, until);
    for (const domain of appliedOverrides) if (!overrides.has(domain)) engine.removeOverride(domain);
    appliedOverrides.clear();
    for (const [domain, hop] of overrides) {
      engine.setOverride(domain, hop);
      appliedOverrides.add(domain);
    }
    for (const domain of appliedRates) if (!rates.has(domain)) engine.limits.setRate(domain, 0);
    appliedRates.clear();
    for (const [domain, rate] of rates) {
      engine.limits.setRate(domain, rate);
      appliedRates.add(domain);
    }
  }

  function sync(): Promise<void> {
    if (syncing) {
      again = true;
      return syncing;
    }
    syncing = (async () => {
      do {
        again = false;
        await apply().catch((err) =>
          log.debug("operator state sync failed: {error}", { error: (err as Error).message })
        );
      } while (again);
    })().finally(() => syncing = undefined);
    return syncing;
  }

  const limits = new Proxy(engine.limits, {
    get(target, prop) {
      if (prop === "suspend") {
        return (domain: string, until: number) => {
          target.suspend(domain, until);
          void write("suspend", domain, until > 0 ? { until } : null);
        };
      }
      if (prop === "setRate") {
        return (domain: string, rate: number) => {
          target.setRate(domain, rate);
          if (rate > 0) appliedRates.add(domain);
          void write("rate", domain, rate > 0 ? { rate } : null);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as DestinationLimits;

  const shared: DeliveryEngine = Object.create(engine, {
    limits: { value: limits },
    // The operator's entry points (control handlers): applied here, persisted, and shared with every node.
    suspend: {
      value: async (domain: string, until: number) => {
        await engine.suspend(domain, until);
        void write("suspend", domain, until > 0 ? { until } : null);
      },
    },
    setRate: {
      value: async (domain: string, rate: number) => {
        await engine.setRate(domain, rate);
        if (rate > 0) appliedRates.add(domain);
        void write("rate", domain, rate > 0 ? { rate } : null);
      },
    },
    setFrozen: {
      value: (frozen: boolean) => {
        engine.setFrozen(frozen);
        void write("freeze", "global", { frozen });
      },
    },
    setOverride: {
      value: (domain: string, target: { host: string; port: number }) => {
        engine.setOverride(domain, target);
        appliedOverrides.add(domain.toLowerCase());
        void write("override", domain.toLowerCase(), target);
      },
    },
    removeOverride: {
      value: (domain: string) => {
        const removed = engine.removeOverride(domain);
        appliedOverrides.delete(domain.toLowerCase());
        void write("override", domain.toLowerCase(), null);
        return removed;
      },
    },
  });
  return { engine: shared, sync };
}
