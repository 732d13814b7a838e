/**
 * The delivery engine: wires the scheduler (which messages run when), the attempt
 * runner (one attempt of one message, per destination), the transports (SMTP by
 * default, LMTP and HTTP webhooks per `[delivery.domains."…"] transport`; see
 * transport_select.ts), the destination limits and the
 * operator actions into the interface the daemon and the control plane use.
 * 4xx and network errors are retried with backoff, 5xx fail the recipient,
 * messages past `max_queue_lifetime` expire.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { parseConfig } from "../config/load.ts";
 * import { openKvStore } from "../queue/kv_store.ts";
 * import { createSubmitter } from "../queue/submit.ts";
 * import { openSpool } from "../spool/store.ts";
 * import { createConnectionPool } from "./connection_pool.ts";
 * import { createResolver } from "./resolver.ts";
 * import { allRecipients } from "./transport.ts";
 * import { createDeliveryEngine } from "./engine.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const [store, spool, resolver] = [await openKvStore(`${dir}/queue.kv`), await openSpool(`${dir}/spool`), createResolver()];
 * const config = parseConfig("", "config.toml");
 * const finished = Promise.withResolvers<string>();
 * const engine = createDeliveryEngine({
 *   config: () => config,
 *   store,
 *   spool,
 *   hostname: "mx.example",
 *   log: getLogger(["empath"]),
 *   resolver,
 *   pool: createConnectionPool({ maxPerDestination: 1, idleTimeoutMs: 1000, maxMessagesPerConnection: 1 }),
 *   transportFor: () => ({ kind: "sink", deliver: (job) => Promise.resolve({ recipients: allRecipients(job.message.recipients.map((r) => r.address), "delivered", "250 ok") }) }),
 *   events: { finished: (record) => finished.resolve(record.id) },
 * });
 * engine.start();
 * const envelope = { sender: "", recipients: [{ address: "bob@example.com" }], client: { address: "127.0.0.1", listener: "mx" } };
 * const record = await createSubmitter({ store, spool }).submit({ data: new TextEncoder().encode("Subject: hi\r\n\r\n"), envelope });
 * engine.wake(record); // right after a message is queued
 * assert.equal(await finished.promise, record.id);
 * await engine.stop(30_000);
 * resolver.close();
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import type { Priority, QueueRecord, QueueStore } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";
import type { SmtpTrace } from "../observability/mod.ts";
import { createAttemptRunner } from "./attempt.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { ConnectionPool } from "./connection_pool.ts";
import { createLifecycle, type DeliveryEvents } from "./lifecycle.ts";
import { DestinationLimits } from "./limits.ts";
import { createOperator, type MessageFilter } from "./operator.ts";
import { ORPHAN_SWEEP_MS, sweepOrphans } from "./orphan_sweep.ts";
import { createOperatorState } from "./operator_state.ts";
import { createOverrides } from "./overrides.ts";
import type { Resolver } from "./resolver.ts";
import { matchDomainPolicy } from "./router.ts";
import { createScheduler } from "./scheduler.ts";
import { createHttpTransport } from "./http_transport.ts";
import { createLmtpTransport } from "./lmtp_transport.ts";
import type { ListenerAddress } from "./loop_check.ts";
import { createSmtpTransport } from "./smtp_transport.ts";
import type { TransportSecurity } from "./transport_security.ts";
import type { TlsRptResult } from "./tls_rpt.ts";
import type { TransportSelector } from "./transport.ts";
import { createTransportSelector } from "./transport_select.ts";

export type { DeliveryEvents };

/** How often the last error per destination is written to the store (and at stop). */
const LAST_ERROR_FLUSH_MS = 15_000;

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
  /** Bound listener addresses, for loop detection (default: the configured ones). */
  ownAddresses?: () => ListenerAddress[];
  /** Live SMTP tracing of outbound sessions (`empathctl trace smtp`). */
  trace?: SmtpTrace;
  /** Lease owner id of this node (default `<hostname>:<pid>`); a shared store leases fresh mail to it. */
  owner?: string;
  /** Lease length of claimed messages (default 5 minutes). */
  leaseMs?: number;
  /** DANE, MTA-STS, TLS-RPT and REQUIRETLS for SMTP (see transport_security.ts). */
  security?: TransportSecurity;
  /** Told of every outbound SMTP TLS failure by its RFC 8460 result type. */
  onTlsFailure?: (result: TlsRptResult) => void;
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
  /** Holds delivery to a domain until `until` (epoch ms, stored); 0 lifts the hold and releases held mail. */
  suspend(domain: string, until: number): Promise<void>;
  /** Sets (0 removes) a runtime rate limit, stored; mail held by the old rate becomes due now. */
  setRate(domain: string, rate: number): Promise<void>;
  /** Loads the stored operator state (freeze, suspensions, overrides, rates, last errors); call before start. */
  restoreState(): Promise<void>;
  /** Sets the priority of waiting or frozen messages; returns how many. */
  setPriority(filter: MessageFilter, priority: Priority): Promise<number>;
  /** Removes spool data without queue state (runs every 10 minutes; callable for tests/operators). */
  sweepOrphans(now?: number): Promise<number>;
  /** Global freeze: nothing is delivered until unfrozen (stored, so it outlives a restart). */
  readonly frozen: boolean;
  setFrozen(frozen: boolean): Promise<void>;
  setOverride(domain: string, target: { host: string; port: number }): Promise<void>;
  removeOverride(domain: string): Promise<boolean>;
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
  const lmtp = createLmtpTransport(deps);
  const http = createHttpTransport(deps);
  const transportFor = deps.transportFor ?? createTransportSelector({ config: cfg, smtp, lmtp, http });
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
    owner: deps.owner,
    leaseMs: deps.leaseMs,
    clock,
    concurrency: () => cfg().delivery.concurrency,
    enabled: () => cfg().delivery.enabled,
    run: (record, fresh) => runner.deliverMessage(record, fresh),
  });
  const operator = createOperator({ store, spool, log, lifecycle, scheduler, limits, clock });
  const state = createOperatorState({
    store,
    log,
    clock,
    limits,
    overrides,
    scheduler,
    operator,
    lastReplies: () => runner.lastReplies(),
  });
  const flushReplies = () =>
    state.flushReplies().catch((err) => log.warning("cannot store last errors: {error}", { error: String(err) }));
  let replyFlusher: ReturnType<typeof setInterval> | undefined;
  const sweep = (now = clock.now()) =>
    sweepOrphans({ spool, store, log, inFlight: (id) => scheduler.running(id) !== undefined }, now);

  return {
    ...operator,
    limits,
    get frozen() {
      return scheduler.frozen;
    },
    setFrozen: state.setFrozen,
    suspend: state.suspend,
    setRate: state.setRate,
    restoreState: state.restore,
    start() {
      if (sweeper !== undefined) return;
      scheduler.start();
      const prune = () => {
        const q = cfg().queue;
        store.pruneDelivered(clock.now() - q.dedup_max_age, q.dedup_max).catch((err) => {
          log.warning("pruning delivery marks failed: {error}", { error: (err as Error).message });
        });
      };
      prune();
      sweeper = setInterval(() => {
        void sweep().catch(() => {});
        prune();
      }, ORPHAN_SWEEP_MS);
      Deno.unrefTimer(sweeper as unknown as number);
      replyFlusher = setInterval(() => void flushReplies(), LAST_ERROR_FLUSH_MS);
      Deno.unrefTimer(replyFlusher as unknown as number);
    },
    wake: (record) => scheduler.wake(record),
    async stop(graceMs) {
      clearInterval(sweeper);
      clearInterval(replyFlusher);
      await scheduler.stop(graceMs);
      await flushReplies();
      await Promise.all([smtp.close?.(), lmtp.close?.(), http.close?.()]);
      deps.resolver.close();
    },
    inFlight: () => scheduler.inFlight(),
    lastReplies: state.lastReplies,
    sweepOrphans: sweep,
    setOverride: state.setOverride,
    removeOverride: state.removeOverride,
    overrides: overrides.all,
  };
}
