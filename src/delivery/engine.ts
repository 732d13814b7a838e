/**
 * The delivery engine: takes due messages from the queue store (and new ones the
 * moment they are queued), groups each message's recipients by domain, routes
 * each group (override, relay host, MX), delivers it over a pooled SMTP session,
 * and records every outcome. 4xx and network errors are retried with backoff, 5xx
 * fail the recipient, messages past `max_queue_lifetime` expire.
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
import type { AttemptRecord, QueueRecord, QueueStore } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";
import { ulidTime } from "../spool/mod.ts";
import { retryDelay } from "./backoff.ts";
import { endSpan, startSpan } from "../observability/tracing.ts";
import type { ConnectionPool } from "./connection_pool.ts";
import { DestinationLimits } from "./limits.ts";
import { applyOutcomes, expire, pendingRecipients, type RecipientOutcome, settle } from "./outcome.ts";
import type { Resolver } from "./resolver.ts";
import { DnsError, matchDomainPolicy, routeDomain } from "./router.ts";
import { type DeliveryTarget, type OutboundMessage, SmtpClientError, type SmtpSession } from "./smtp_client.ts";

/** Events for modules, metrics and DSNs. Awaited, but errors are logged, never fatal. */
export interface DeliveryEvents {
  attempt?(record: QueueRecord, attempt: AttemptRecord): void | Promise<void>;
  /** Called once all recipients are final, before the record and data are removed. */
  finished?(record: QueueRecord): void | Promise<void>;
  /** Called when a message waits for a retry, before it is stored (may update it). */
  deferred?(record: QueueRecord): void | Promise<void>;
  /** Recipients failed without an attempt: queue lifetime expired, or bounced by the operator. */
  failedWithoutAttempt?(record: QueueRecord, recipients: string[], reason: string): void | Promise<void>;
}

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
  retryNow(filter: { id?: string; domain?: string; all?: boolean }): Promise<number>;
  freeze(filter: { id?: string; domain?: string; all?: boolean }): Promise<number>;
  unfreeze(filter: { id?: string; domain?: string; all?: boolean }): Promise<number>;
  /** Fails every pending recipient now (a failure DSN goes to the sender); returns how many messages. */
  bounce(filter: { id?: string; domain?: string; all?: boolean }, reason?: string): Promise<number>;
  /** Last error reply seen per destination domain (for `queue summary`). */
  lastReplies(): Map<string, { reply: string; at: number }>;
  /** Removes a message (state and data). False when it does not exist. */
  deleteMessage(id: string): Promise<boolean>;
  /** Removes spool data without queue state (runs every 10 minutes; callable for tests/operators). */
  sweepOrphans(now?: number): Promise<number>;
  /** Global freeze: nothing is delivered until unfrozen. */
  readonly frozen: boolean;
  setFrozen(frozen: boolean): void;
  setOverride(domain: string, target: { host: string; port: number }): void;
  removeOverride(domain: string): boolean;
  overrides(): Map<string, { host: string; port: number }>;
}

const MAX_BUSY_WAIT_MS = 1000;
/** How often spool files without a queue record are looked for, and how old they must be. */
const ORPHAN_SWEEP_MS = 10 * 60_000;
const ORPHAN_MIN_AGE_MS = 60_000;

/** Creates the engine (call start()). */
/** Records written at once by retry/freeze/unfreeze of many messages. */
const OPERATOR_BATCH = 256;

/** TLS errors that mean "the certificate did not verify" rather than "the handshake failed". */
const CERT_FAILURE =
  /certificate|self[- ]signed|unable to verify|UnknownIssuer|CERT_|hostname|altname|NotValidForName|Expired/i;

export function createDeliveryEngine(deps: DeliveryDeps): DeliveryEngine {
  /**
   * Opportunistic TLS is unauthenticated encryption (RFC 7435; Postfix smtp_tls_security_level = may).
   * When the certificate fails verification, the same host is tried with TLS but without
   * verification (still encrypted against passive eavesdroppers); when the handshake itself fails,
   * in clear text. Either way the mail is not held until it expires. `required` never falls back.
   */
  async function opportunisticFallback(err: unknown, target: DeliveryTarget, id: string, server: string) {
    if (target.tls !== "opportunistic" || !(err instanceof SmtpClientError) || err.code !== "TLS") throw err;
    if (target.verifyCertificates && CERT_FAILURE.test(err.message)) {
      log.warning(
        "{id}: the certificate of {server} failed verification ({error}); delivering over unverified TLS (tls = opportunistic)",
        { id, server, error: err.message },
      );
      try {
        return await deps.pool.acquire({ ...target, verifyCertificates: false });
      } catch (again) {
        if (!(again instanceof SmtpClientError) || again.code !== "TLS") throw again;
        err = again;
      }
    }
    log.info("{id}: TLS with {server} failed ({error}); retrying in clear text (tls = opportunistic)", {
      id,
      server,
      error: (err as Error).message,
    });
    return await deps.pool.acquire({ ...target, tls: "none" });
  }

  const { store, spool, log } = deps;
  const cfg = () => deps.config();
  const running = new Map<string, Promise<void>>();
  const ready: QueueRecord[] = [];
  /** Records handed over by intake a moment ago: the snapshot is the stored version. */
  const fresh = new WeakSet<QueueRecord>();
  const readyIds = new Set<string>();
  const runtimeOverrides = new Map<string, { host: string; port: number }>();
  const lastReplies = new Map<string, { reply: string; at: number }>();
  let started = false;
  let stopping = false;
  let frozen = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let scanning = false;
  let rescan = false;
  let sweeper: ReturnType<typeof setInterval> | undefined;

  /**
   * Removes spool data that has no queue record: data of finished messages whose unlink
   * failed, left behind on purpose (see finish()). Files being received are skipped, and so
   * are young files (their record may be a moment away).
   */
  async function sweepOrphans(now = Date.now()): Promise<number> {
    let removed = 0;
    for await (const id of spool.list()) {
      if (spool.receiving.has(id) || running.has(id) || now - ulidTime(id) < ORPHAN_MIN_AGE_MS) continue;
      if (await store.get(id)) continue;
      await spool.delete(id).then(() => removed++, (err) => {
        log.warning("orphan sweep could not remove {id}: {error}", { id, error: (err as Error).message });
      });
    }
    if (removed > 0) log.info("orphan sweep removed {n} spool files without queue state", { n: removed });
    return removed;
  }

  const domainPolicy = (domain: string) => matchDomainPolicy(domain, new Map(Object.entries(cfg().delivery.domains)));
  const limits = new DestinationLimits((domain) => {
    const d = cfg().delivery;
    const p = domainPolicy(domain);
    return {
      maxConnections: p?.max_connections ?? d.max_connections_per_domain,
      rate: p?.rate,
      failures: d.circuit_breaker.failures,
      cooldownMs: d.circuit_breaker.cooldown,
    };
  });

  function mxOverrides(): Map<string, { host: string; port: number }> {
    const map = new Map<string, { host: string; port: number }>();
    for (const [domain, p] of Object.entries(cfg().delivery.domains)) if (p.mx_override) map.set(domain, p.mx_override);
    for (const [domain, t] of runtimeOverrides) map.set(domain, t);
    return map;
  }

  function schedule(delayMs: number) {
    if (stopping) return;
    clearTimeout(timer);
    timer = setTimeout(() => void scan(), Math.max(0, delayMs));
  }

  /** Fills the ready list from the store's due index. */
  async function scan() {
    if (scanning) {
      rescan = true;
      return;
    }
    scanning = true;
    try {
      do {
        rescan = false;
        if (stopping || frozen) return;
        const room = cfg().delivery.concurrency * 2 - ready.length;
        if (room > 0) {
          for (const record of await store.due(Date.now(), room + running.size)) {
            if (!running.has(record.id) && !readyIds.has(record.id)) enqueue(record);
          }
        }
        pump();
      } while (rescan);
    } catch (err) {
      log.error("queue scan failed: {error}", { error: (err as Error).message });
    } finally {
      scanning = false;
      const next = await store.nextDueAt().catch(() => null);
      schedule(next === null ? 1000 : Math.min(1000, next - Date.now()));
    }
  }

  function enqueue(record: QueueRecord) {
    ready.push(record);
    readyIds.add(record.id);
  }

  function pump() {
    while (!stopping && !frozen && ready.length > 0 && running.size < cfg().delivery.concurrency) {
      const record = ready.shift()!;
      readyIds.delete(record.id);
      if (running.has(record.id)) continue;
      const work = processMessage(record).catch((err) => {
        log.error("delivery of {id} failed unexpectedly: {error}", { id: record.id, error: (err as Error).stack });
      }).finally(() => {
        running.delete(record.id);
        if (ready.length > 0) pump();
        else if (!stopping) schedule(0);
      });
      running.set(record.id, work);
    }
  }

  async function processMessage(snapshot: QueueRecord) {
    // Work on the stored version (the operator may have changed it since it was listed), except
    // for a record intake handed over a moment ago, which is exactly what was stored.
    const record = fresh.has(snapshot) ? snapshot : await store.get(snapshot.id);
    if (!record || (record.status !== "queued" && record.status !== "deferred")) return;
    const now = Date.now();
    const d = cfg().delivery;
    if (now - record.receivedAt > d.max_queue_lifetime) {
      const pending = pendingRecipients(record).map((r) => r.address);
      expire(record, d.max_queue_lifetime, now);
      await emitFailed(record, pending, "expired");
      log.info("{id} expired after {age}s in the queue", {
        id: record.id,
        age: Math.round((now - record.receivedAt) / 1000),
      });
      return await finish(record);
    }
    const groups = new Map<string, string[]>();
    for (const r of pendingRecipients(record)) {
      const domain = r.address.slice(r.address.lastIndexOf("@") + 1).toLowerCase();
      groups.set(domain, [...(groups.get(domain) ?? []), r.address]);
    }
    const results = await Promise.all([...groups].map(([domain, rcpts]) => deliverGroup(record, domain, rcpts)));
    let next = Infinity;
    let attempted = false;
    for (const result of results) {
      if (result.kind === "later") {
        log.info("{id}: delivery held ({reason}) until {until}", {
          id: record.id,
          reason: result.reason,
          until: new Date(result.retryAt).toISOString(),
        });
        next = Math.min(next, result.retryAt);
        continue;
      }
      attempted = true;
      applyOutcomes(record, result.outcomes, result.attempt);
      for (const o of result.outcomes) {
        if (o.outcome === "delivered") continue;
        const domain = o.address.slice(o.address.lastIndexOf("@") + 1).toLowerCase();
        lastReplies.set(domain, { reply: o.reply, at: Date.now() });
      }
      await emit("attempt", record, result.attempt);
      if (result.outcomes.some((o) => o.outcome === "deferred")) {
        const attempts = Math.max(...record.recipients.map((r) => r.attempts));
        next = Math.min(next, Date.now() + retryDelay(attempts, d.retry));
      }
    }
    if (!attempted && next === Infinity) next = Date.now() + 1000;
    if (settle(record, next === Infinity ? Date.now() : next) === "finished") return await finish(record);
    await emit("deferred", record);
    await store.put(record);
  }

  type GroupResult =
    | { kind: "done"; outcomes: RecipientOutcome[]; attempt: AttemptRecord }
    | { kind: "later"; retryAt: number; reason: string };

  async function deliverGroup(record: QueueRecord, domain: string, rcpts: string[]): Promise<GroupResult> {
    const t0 = Date.now();
    const waitUntil = t0 + MAX_BUSY_WAIT_MS;
    while (true) {
      const verdict = limits.tryAcquire(domain, Date.now());
      if (verdict.ok) break;
      if (verdict.reason !== "busy" && verdict.reason !== "rate" || verdict.retryAt > waitUntil) {
        return { kind: "later", retryAt: verdict.retryAt, reason: verdict.reason };
      }
      await new Promise((r) => setTimeout(r, Math.max(5, verdict.retryAt - Date.now())));
      if (stopping) return { kind: "later", retryAt: Date.now(), reason: "stopping" };
    }
    let connectionFailed = false;
    let lastError = "";
    const span = startSpan("delivery.attempt", {
      "empath.message_id": record.id,
      "empath.domain": domain,
      "empath.recipients": rcpts.length,
      "empath.attempt": Math.max(
        0,
        ...record.recipients.filter((r) => rcpts.includes(r.address)).map((r) => r.attempts),
      ) +
        1,
    });
    try {
      const result = await attemptGroup(record, domain, rcpts);
      connectionFailed = result.connectionFailed;
      lastError = result.error ?? "";
      const attempt: AttemptRecord = {
        at: t0,
        durationMs: Date.now() - t0,
        server: result.server,
        tls: result.tls,
        recipients: rcpts,
        result: result.outcomes.map((o) => ({ address: o.address, code: o.code, reply: o.reply, outcome: o.outcome })),
        error: result.error,
      };
      for (const o of result.outcomes) {
        log.info("{id} to=<{rcpt}> relay={server} status={outcome} reply={reply}", {
          id: record.id,
          rcpt: o.address,
          server: result.server ?? "none",
          outcome: o.outcome,
          reply: o.reply,
        });
      }
      const outcomes = [...new Set(result.outcomes.map((o) => o.outcome))].join(",");
      endSpan(span, result.error, { "empath.server": result.server ?? "", "empath.outcome": outcomes });
      return { kind: "done", outcomes: result.outcomes, attempt };
    } catch (err) {
      endSpan(span, err);
      throw err;
    } finally {
      limits.release(domain, { connectionFailed, error: lastError });
    }
  }

  interface AttemptResult {
    outcomes: RecipientOutcome[];
    server?: string;
    tls?: boolean;
    error?: string;
    connectionFailed: boolean;
  }

  const all = (
    rcpts: string[],
    outcome: RecipientOutcome["outcome"],
    reply: string,
    code?: number,
    remoteMta?: string,
  ) => rcpts.map((address) => ({ address, outcome, reply, code, remoteMta }));

  async function attemptGroup(record: QueueRecord, domain: string, rcpts: string[]): Promise<AttemptResult> {
    const d = cfg().delivery;
    let route;
    try {
      route = await routeDomain(domain, deps.resolver, {
        relayHost: d.relay_host,
        mxOverrides: mxOverrides(),
        defaultPort: d.port,
      });
    } catch (err) {
      const permanent = err instanceof DnsError && err.permanent;
      const reply = err instanceof DnsError && err.code === "NULL_MX"
        ? `556 5.1.10 Recipient domain ${domain} does not accept mail (null MX, RFC 7505)`
        : permanent
        ? `550 5.1.2 Host or domain name not found: ${domain} (${(err as Error).message})`
        : `451 4.4.3 DNS lookup for ${domain} failed temporarily (${(err as Error).message})`;
      return { outcomes: all(rcpts, permanent ? "failed" : "deferred", reply), error: reply, connectionFailed: false };
    }
    const policy = domainPolicy(domain);
    const message = outbound(record, rcpts);
    let lastError: SmtpClientError | Error | undefined;
    // Every MX host is resolved through our resolver (so configured name servers and the
    // cache apply); the connection goes to the address, with the name kept for TLS (SNI and
    // certificate verification).
    const candidates: { ip: string; name: string; port: number }[] = [];
    for (const host of route.hosts) {
      if (/^[\d.]+$|:/.test(host.host) || host.host === "localhost") {
        const ip = host.host === "localhost" ? "127.0.0.1" : host.host;
        candidates.push({ ip, name: ip, port: host.port });
        continue;
      }
      try {
        for (const ip of await deps.resolver.addresses(host.host)) {
          candidates.push({ ip, name: host.host, port: host.port });
        }
      } catch (err) {
        lastError = err as Error;
        log.info("{id}: MX {host} has no usable address: {error}", {
          id: record.id,
          host: host.host,
          error: (err as Error).message,
        });
      }
    }
    for (const host of candidates) {
      const verify = !(policy?.accept_invalid_certs ?? d.accept_invalid_certs);
      const target: DeliveryTarget = {
        host: host.ip,
        port: host.port,
        servername: /^[\d.]+$|:/.test(host.name) ? undefined : host.name,
        tls: policy?.tls ?? d.tls,
        verifyCertificates: verify,
        heloName: d.helo_name ?? deps.hostname,
        timeouts: {
          connect: d.timeouts.connect,
          greeting: d.timeouts.greeting,
          mail: d.timeouts.command,
          rcpt: d.timeouts.command,
          data: d.timeouts.data_block,
          dataEnd: d.timeouts.data_end,
        },
      };
      const server = host.name === host.ip ? `${host.ip}:${host.port}` : `${host.name}[${host.ip}]:${host.port}`;
      let session: SmtpSession;
      try {
        session = await deps.pool.acquire(target).catch((err) => opportunisticFallback(err, target, record.id, server));
      } catch (err) {
        // Connection, greeting, EHLO or TLS trouble: try the next MX (RFC 5321 5.1).
        lastError = err as Error;
        log.info("{id}: {server} unusable: {error}", { id: record.id, server, error: (err as Error).message });
        continue;
      }
      try {
        const result = await session.send(message);
        deps.pool.release(session, true);
        return {
          outcomes: result.recipients.map((r) => ({
            address: r.address,
            outcome: r.outcome,
            code: r.code,
            reply: r.reply,
            remoteMta: server,
            remoteDsn: result.dsn,
          })),
          server,
          tls: result.tls,
          connectionFailed: false,
        };
      } catch (err) {
        deps.pool.release(session, false);
        // After MAIL FROM the message may have reached the server: never try another MX in the same
        // attempt; the whole group is retried later (at-least-once, like every MTA).
        const e = err as SmtpClientError;
        const reply = e.reply ??
          `451 4.4.2 ${server} connection problem during ${e.phase ?? "transaction"}: ${e.message}`;
        return {
          outcomes: all(rcpts, e.permanent ? "failed" : "deferred", reply, e.smtpCode, server),
          server,
          error: e.message,
          connectionFailed: false,
        };
      }
    }
    const e = lastError as SmtpClientError | undefined;
    const permanent = !!e?.permanent && !!e?.smtpCode;
    const reply = e?.reply ??
      `451 4.4.1 No usable mail exchanger for ${domain} (${route.hosts.length} tried): ${
        e?.message ?? "unknown error"
      }`;
    return {
      outcomes: all(rcpts, permanent ? "failed" : "deferred", reply, e?.smtpCode),
      error: e?.message,
      connectionFailed: true,
      server: route.hosts.map((h) => `${h.host}:${h.port}`).join(","),
    };
  }

  function outbound(record: QueueRecord, rcpts: string[]): OutboundMessage {
    const wanted = new Set(rcpts);
    return {
      sender: record.sender,
      recipients: record.recipients.filter((r) => wanted.has(r.address)).map((r) => ({
        address: r.address,
        notify: r.notify,
        orcpt: r.orcpt,
      })),
      ret: record.dsn.ret,
      envid: record.dsn.envid,
      size: record.size,
      smtpUtf8: record.smtpUtf8,
      eightBit: record.bodyType === "8bitmime",
      open: () => spool.readStream(record.id),
    };
  }

  async function emit(kind: "attempt" | "finished" | "deferred", record: QueueRecord, attempt?: AttemptRecord) {
    try {
      if (kind === "attempt" && attempt) await deps.events?.attempt?.(record, attempt);
      if (kind === "finished") await deps.events?.finished?.(record);
      if (kind === "deferred") await deps.events?.deferred?.(record);
    } catch (err) {
      log.error("delivery event handler failed for {id}: {error}", { id: record.id, error: (err as Error).message });
    }
  }

  async function emitFailed(record: QueueRecord, recipients: string[], reason: string) {
    try {
      await deps.events?.failedWithoutAttempt?.(record, recipients, reason);
    } catch (err) {
      log.error("delivery event handler failed for {id}: {error}", { id: record.id, error: (err as Error).message });
    }
  }

  /** All recipients final: report, then drop state first and data second (see module docs). */
  async function finish(record: QueueRecord) {
    await emit("finished", record);
    log.debug("{id} {status}: {summary}", {
      id: record.id,
      status: record.status,
      summary: record.recipients.map((r) => `${r.address}=${r.status}`).join(" "),
    });
    // State first: if we crash or the unlink fails, the data is an orphan that can never be
    // delivered again; recovery and the periodic sweep remove it.
    await store.delete(record.id);
    await spool.delete(record.id).catch((err) => {
      log.warning("could not remove spool data of {id} (will retry in the orphan sweep): {error}", {
        id: record.id,
        error: (err as Error).message,
      });
    });
  }

  /**
   * Writes operator changes in concurrent batches, so the store can group-commit them (one KV
   * commit or one directory sync per batch instead of one per message); `afterFirst` lets
   * delivery start while the rest is still being written.
   */
  async function putAll(records: QueueRecord[], afterFirst?: () => void) {
    for (let i = 0; i < records.length; i += OPERATOR_BATCH) {
      await Promise.all(records.slice(i, i + OPERATOR_BATCH).map((r) => store.put(r)));
      if (i === 0) afterFirst?.();
    }
  }

  async function select(filter: { id?: string; domain?: string; all?: boolean }): Promise<QueueRecord[]> {
    if (filter.id) {
      const r = await store.get(filter.id);
      return r ? [r] : [];
    }
    if (!filter.domain && !filter.all) return [];
    return await Array.fromAsync(store.list({ domain: filter.domain }));
  }

  return {
    limits,
    get frozen() {
      return frozen;
    },
    start() {
      if (started) return;
      started = true;
      if (cfg().delivery.enabled) schedule(0);
      sweeper = setInterval(() => void sweepOrphans().catch(() => {}), ORPHAN_SWEEP_MS);
      Deno.unrefTimer(sweeper as unknown as number);
    },
    sweepOrphans,
    wake(record) {
      if (!started || stopping || !cfg().delivery.enabled) return;
      if (record && !frozen && !running.has(record.id) && !readyIds.has(record.id)) {
        fresh.add(record);
        enqueue(record);
        pump();
      } else schedule(0);
    },
    async stop(graceMs) {
      stopping = true;
      clearTimeout(timer);
      clearInterval(sweeper);
      ready.length = 0;
      readyIds.clear();
      const deadline = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs));
      const done = await Promise.race([
        Promise.allSettled([...running.values()]).then(() => "done" as const),
        deadline,
      ]);
      if (done === "timeout") {
        log.warning("{n} deliveries still running after the grace period; they stay queued", { n: running.size });
      }
      await deps.pool.closeAll();
      deps.resolver.close();
    },
    inFlight: () => [...running.keys()],
    async retryNow(filter) {
      const now = Date.now();
      const changed = (await select(filter)).filter((r) => r.status === "queued" || r.status === "deferred");
      for (const record of changed) record.nextAttemptAt = now;
      await putAll(changed, () => schedule(0));
      schedule(0);
      return changed.length;
    },
    async freeze(filter) {
      const changed = (await select(filter)).filter((r) => r.status === "queued" || r.status === "deferred");
      for (const record of changed) {
        record.frozenFrom = record.status;
        record.status = "frozen";
      }
      await putAll(changed);
      return changed.length;
    },
    async unfreeze(filter) {
      const now = Date.now();
      const changed = (await select(filter)).filter((r) => r.status === "frozen");
      for (const record of changed) {
        record.status = record.frozenFrom ?? "queued";
        record.frozenFrom = undefined;
        record.nextAttemptAt = now;
      }
      await putAll(changed, () => schedule(0));
      schedule(0);
      return changed.length;
    },
    async bounce(filter, reason = "5.0.0 Returned to the sender by the mail system administrator") {
      let n = 0;
      for (const listed of await select(filter)) {
        await running.get(listed.id);
        const record = await store.get(listed.id);
        if (!record) continue;
        const pending = pendingRecipients(record);
        if (pending.length === 0) continue;
        applyOutcomes(record, pending.map((r) => ({ address: r.address, outcome: "failed" as const, reply: reason })));
        await emitFailed(record, pending.map((r) => r.address), "bounced by operator");
        settle(record, Date.now());
        log.info("{id} bounced by the operator ({n} recipients)", { id: record.id, n: pending.length });
        await finish(record);
        n++;
      }
      return n;
    },
    lastReplies: () => new Map(lastReplies),
    async deleteMessage(id) {
      await running.get(id);
      const record = await store.get(id);
      if (!record) return false;
      await store.delete(id);
      await spool.delete(id);
      return true;
    },
    setFrozen(value) {
      frozen = value;
      if (!frozen) schedule(0);
    },
    setOverride(domain, target) {
      runtimeOverrides.set(domain.toLowerCase(), target);
    },
    removeOverride(domain) {
      return runtimeOverrides.delete(domain.toLowerCase());
    },
    overrides: mxOverrides,
  };
}
