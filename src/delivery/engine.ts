/**
 * The delivery engine: wires the scheduler (which messages run when), the attempt
 * runner (one attempt of one message, per destination), the transports (SMTP by
 * default; one picked per destination domain), the destination limits and the
 * operator actions into the interface the daemon and the control plane use.
 * 4xx and network errors are retried with backoff, 5xx fail the recipient,
 * messages past `max_queue_lifetime` expire.
 *
 * @example
 * ```ts
 * const engine = createDeliveryEngine({ config: () => config, store, spool, hostname, log, resolver, pool });
 * engine.start();
 * engine.wake(record); // right after a message is queued
 * await engine.stop(30_000);
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import type { QueueRecord, QueueStore } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";
import type { SmtpTrace } from "../observability/mod.ts";
import { createAttemptRunner } from "./attempt.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { ConnectionPool } from "./connection_pool.ts";
import { createLifecycle, type DeliveryEvents } from "./lifecycle.ts";
import { DestinationLimits } from "./limits.ts";
import { createOperator, type MessageFilter } from "./operator.ts";
import { ORPHAN_SWEEP_MS, sweepOrphans } from "./orphan_sweep.ts";
import { createOverrides } from "./overrides.ts";
import type { Resolver } from "./resolver.ts";
import { matchDomainPolicy } from "./router.ts";
import { createScheduler } from "./scheduler.ts";
import { createSmtpTransport } from "./smtp_transport.ts";
import type { TransportSelector } from "./transport.ts";

export type { DeliveryEvents };

/** What the engine needs. */
export interface DeliveryDeps {
  config: () => Config;
  store: QueueStore;
  spool: Spool;
  hostname: string;
  log: Logger;
  resolver: Resolver;
  pool: ConnectionPool;
  events?: DeliveryEvents;
  /** Time source for backoff, expiry, the circuit breaker and scheduling; default `Date.now`. */
  clock?: Clock;
  /** Picks the transport per destination domain; default SMTP (over `resolver` and `pool`) for every domain. */
  transportFor?: TransportSelector;
  /** Live SMTP tracing of outbound sessions (`empathctl trace smtp`). */
  trace?: SmtpTrace;
}

/** The running engine, with the operations the control plane calls. */
export interface DeliveryEngine {
  start(): void;
  /** Delivers a just-queued message now (or schedules a due scan when no record is given). */
  wake(record?: QueueRecord): void;
  stop(graceMs: number): Promise<void>;
  readonly limits: DestinationLimits;
  inFlight(): string[];
  /** Makes messages due now; returns how many. */
  retryNow(filter: MessageFilter): Promise<number>;
  freeze(filter: MessageFilter): Promise<number>;
  unfreeze(filter: MessageFilter): Promise<number>;
  /** Fails every pending recipient now (a failure DSN goes to the sender); returns how many messages. */
  bounce(filter: MessageFilter, reason?: string): Promise<number>;
  /** Last error reply seen per destination domain (for `queue summary`). */
  lastReplies(): Map<string, { reply: string; at: number }>;
  /** Removes a message (state and data). False when it does not exist. */
  deleteMessage(id: string): Promise<boolean>;
  /** Holds delivery to a domain until `until` (epoch ms); 0 lifts the hold. */
  suspend(domain: string, until: number): void;
  /** Removes spool data without queue state (runs every 10 minutes; callable for tests/operators). */
  sweepOrphans(now?: number): Promise<number>;
  /** Global freeze: nothing is delivered until unfrozen. */
  readonly frozen: boolean;
  setFrozen(frozen: boolean): void;
  setOverride(domain: string, target: { host: string; port: number }): void;
  removeOverride(domain: string): boolean;
  overrides(): Map<string, { host: string; port: number }>;
}

/** Creates the engine (call start()). */
export function createDeliveryEngine(deps: DeliveryDeps): DeliveryEngine {
  const { store, spool, log } = deps;
  const cfg = () => deps.config();
  const clock = deps.clock ?? systemClock;
  let sweeper: ReturnType<typeof setInterval> | undefined;

  const overrides = createOverrides(cfg);
  const limits = new DestinationLimits((domain) => {
    const d = cfg().delivery;
    const p = matchDomainPolicy(domain, new Map(Object.entries(d.domains)));
    return {
      maxConnections: p?.max_connections ?? d.max_connections_per_domain,
      rate: p?.rate,
      failures: d.circuit_breaker.failures,
      cooldownMs: d.circuit_breaker.cooldown,
    };
  }, clock);
  const smtp = createSmtpTransport({ ...deps, mxOverrides: overrides.all });
  const transportFor = deps.transportFor ?? (() => smtp);
  const lifecycle = createLifecycle(deps);
  // `stopping` is only read during deliveries, after the scheduler below exists.
  const runner = createAttemptRunner({
    ...deps,
    clock,
    limits,
    transportFor,
    lifecycle,
    stopping: () => scheduler.stopping,
  });
  const scheduler = createScheduler({
    store,
    log,
    clock,
    concurrency: () => cfg().delivery.concurrency,
    enabled: () => cfg().delivery.enabled,
    run: (record, fresh) => runner.deliverMessage(record, fresh),
  });
  const operator = createOperator({ store, spool, log, lifecycle, scheduler, limits, clock });
  const sweep = (now = clock.now()) =>
    sweepOrphans({ spool, store, log, inFlight: (id) => scheduler.running(id) !== undefined }, now);

  return {
    ...operator,
    limits,
    get frozen() {
      return scheduler.frozen;
    },
    setFrozen: (value) => scheduler.setFrozen(value),
    start() {
      if (sweeper !== undefined) return;
      scheduler.start();
      sweeper = setInterval(() => void sweep().catch(() => {}), ORPHAN_SWEEP_MS);
      Deno.unrefTimer(sweeper as unknown as number);
    },
    wake: (record) => scheduler.wake(record),
    async stop(graceMs) {
      clearInterval(sweeper);
      await scheduler.stop(graceMs);
      await smtp.close?.();
      deps.resolver.close();
    },
    inFlight: () => scheduler.inFlight(),
    lastReplies: () => runner.lastReplies(),
    sweepOrphans: sweep,
    setOverride: overrides.set,
    removeOverride: overrides.remove,
    overrides: overrides.all,
  };
}
