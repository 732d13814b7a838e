/**
 * The running daemon: opens the spool and queue store, recovers, starts the
 * listeners, and shuts everything down in order.
 *
 * @example
 * ```ts
 * const daemon = await startDaemon(await loadConfig("config.toml"));
 * await daemon.stop();
 * ```
 * @module
 */
import { join, resolve } from "node:path";
import { type Config, ConfigError, type LoadedConfig } from "../config/mod.ts";
import { logger } from "../observability/log.ts";
import { reloadConfig, watchConfig } from "./reload.ts";
import { createDaemonEvents } from "./events.ts";
import { checkRecipientsTable, recipientChecks, senderDomainLookup } from "./recipients.ts";
import {
  type AuditLog,
  createAuditLog,
  createMetrics,
  type HttpServer,
  logLevel,
  type Metrics,
  setLogLevel,
  startHttp,
} from "../observability/mod.ts";
import {
  claimSocketPath,
  type ControlServer,
  createHandlers,
  type ReloadReport,
  startControlServer,
  type Totals,
} from "../control/mod.ts";
import { VERSION } from "../version.ts";
import { createDsnService } from "../dsn/mod.ts";
import {
  chainDeliveryEvents,
  createSmtpBridge,
  loadModules,
  moduleDeliveryEvents,
  moduleDnsListener,
} from "../modules/mod.ts";
import { createConnectionPool, createDeliveryEngine, createResolver, type DeliveryEngine } from "../delivery/mod.ts";
import {
  createSubmitter,
  openQueueStore,
  priorityOf,
  type QueueStore,
  recoverQueue,
  type RecoveryReport,
  type Submitter,
} from "../queue/mod.ts";
import { openSpool, type Spool } from "../spool/mod.ts";
import {
  AuthThrottle,
  createSmtpListener,
  loadTlsFiles,
  loadUsers,
  type SmtpListener,
  type TlsFiles,
  type UserDb,
  watchTlsFiles,
} from "../smtp/mod.ts";

/** A started daemon. */
export interface Daemon {
  readonly config: Config;
  readonly configPath: string;
  readonly hostname: string;
  readonly spool: Spool;
  readonly store: QueueStore;
  readonly listeners: SmtpListener[];
  /** Bound addresses, in listener order. */
  readonly addresses: { name: string; role: string; host: string; port: number }[];
  readonly recovery: RecoveryReport;
  readonly delivery: DeliveryEngine;
  readonly metrics: Metrics;
  readonly http?: HttpServer;
  readonly control?: ControlServer;
  readonly audit: AuditLog;
  readonly startedAt: number;
  /** The one way into the queue; its "queued" event wakes delivery and counts received mail. */
  readonly submitter: Submitter;
  stop(graceMs?: number): Promise<void>;
}

/** Checks cross-field rules zod cannot express (files referenced by roles). */
function checkRoles(config: Config, file: string) {
  config.listeners.forEach((l, i) => {
    const hasCert = (l.tls_cert ?? config.tls.cert) && (l.tls_key ?? config.tls.key);
    if (l.role !== "mx" && !hasCert) {
      throw new ConfigError(
        `invalid configuration in ${file}:\n  listeners[${i}].role = "${l.role}": needs a certificate: set tls.cert and tls.key (or listeners[${i}].tls_cert/tls_key)`,
        file,
      );
    }
    if (l.role !== "mx" && !config.auth.users_file) {
      throw new ConfigError(
        `invalid configuration in ${file}:\n  auth.users_file = missing: listeners[${i}] has role "${l.role}", which requires AUTH; set auth.users_file (see README "Adding a user")`,
        file,
      );
    }
  });
}

/** Starts Empath with a loaded config. Throws ConfigError for problems found at start-up. */
export async function startDaemon(loaded: LoadedConfig): Promise<Daemon> {
  const { config, path: configPath } = loaded;
  checkRoles(config, configPath);
  const log = logger("daemon");
  const hostname = config.smtp.hostname ?? Deno.hostname();
  const dataDir = resolve(config.data_dir);
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const startedAt = Date.now();
  // A second instance on the same data is refused before it touches anything.
  // Relative paths are relative to the working directory, like data_dir.
  const controlPath = config.control.socket ? resolve(config.control.socket) : join(dataDir, "control.sock");
  if (config.control.enabled) await claimSocketPath(controlPath, log);
  const controlToken = config.control.token_file
    ? await Deno.readTextFile(config.control.token_file).then((t) => t.trim(), (err) => {
      throw new ConfigError(
        `invalid configuration in ${configPath}:\n  control.token_file = "${config.control.token_file}": cannot be read (${
          (err as Error).message
        })`,
        configPath,
      );
    })
    : undefined;
  if (controlToken === "") {
    throw new ConfigError(
      `invalid configuration in ${configPath}:\n  control.token_file = "${config.control.token_file}": the file is empty; expected a secret`,
      configPath,
    );
  }

  const users: UserDb | undefined = config.auth.users_file ? await loadUsers(config.auth.users_file) : undefined;
  await checkRecipientsTable(config).catch((err) => {
    throw new ConfigError(
      `invalid configuration in ${configPath}:\n  recipients.table = "${config.recipients.table}": ${
        (err as Error).message
      }`,
      configPath,
    );
  });
  const modules = await loadModules(config.modules, { configPath });
  const tlsCache = new Map<string, TlsFiles>();
  const stopWatchers: (() => void)[] = [];
  const tlsFor = async (cert?: string, key?: string) => {
    if (!cert || !key) return undefined;
    const k = `${cert}\0${key}`;
    if (!tlsCache.has(k)) tlsCache.set(k, await loadTlsFiles(cert, key));
    return tlsCache.get(k);
  };

  const spool = await openSpool(join(dataDir, "spool"), { fsync: config.spool.fsync });
  const store = await openQueueStore({ ...config, data_dir: dataDir });
  const recovery = await recoverQueue(spool, store, logger("queue"));
  log.info(
    "queue recovered: {total} records, {requeued} requeued, {orphans} orphans and {partial} partial writes removed",
    {
      total: recovery.total,
      requeued: recovery.requeued,
      orphans: recovery.orphansRemoved,
      partial: recovery.partialRemoved,
    },
  );

  const submitter = createSubmitter({
    store,
    spool,
    priorityOf: (envelope) => priorityOf(current, envelope),
    onListenerError: (err, record) =>
      log.error("a queued listener failed for {id}: {error}", { id: record.id, error: String(err) }),
  });
  const metrics = createMetrics({ maxDomains: config.http.metrics_domains });
  const audit = createAuditLog({
    target: !config.audit.enabled
      ? ""
      : config.audit.file === "-"
      ? "-"
      : config.audit.file
      ? resolve(config.audit.file)
      : join(dataDir, "audit.log"),
    retainDays: config.audit.retain_days,
    log: logger("audit"),
    onDrop: (n) => metrics.auditDropped.inc(n),
  });
  const webhooks = createDaemonEvents({ config: () => current, store, log: logger("events"), metrics });
  submitter.onQueued(webhooks.queued);
  const totals: Totals = { received: 0, delivered: 0, deferred: 0, failed: 0 };
  submitter.onQueued((record) => {
    if (record.isDsn) return; // generated here, not received
    totals.received++;
    metrics.messagesReceived.inc({ listener: record.client.listener });
    metrics.messageSize.observe(record.size);
  });
  const d = config.delivery;
  const moduleDns = moduleDnsListener(modules);
  const resolver = createResolver({
    nameServer: d.dns.nameserver ? { ipAddr: d.dns.nameserver.host, port: d.dns.nameserver.port } : undefined,
    timeoutMs: d.dns.timeout,
    cacheTtlMs: d.dns.cache_ttl,
    negativeTtlMs: d.dns.negative_ttl,
    onLookup: (e) => {
      moduleDns?.(e);
      if (!e.cached) metrics.dnsLookupDuration.observe({ type: e.type, result: e.result }, e.durationMs / 1000);
    },
  });
  let current = config;
  const listeners: SmtpListener[] = [];
  const authThrottle = new AuthThrottle(); // AUTH failures per client address, across all listeners
  const recipientCheck = recipientChecks(() => current, hostname, logger("smtp"), metrics);
  const senderLookup = senderDomainLookup(resolver);
  // Modules plug into every listener's session hooks; without modules the SMTP path does no module work.
  const smtpHooks = modules.modules.length > 0 ? createSmtpBridge(modules, { spool, log: logger("smtp") }) : undefined;
  for (const l of config.listeners) {
    const tls = await tlsFor(l.tls_cert ?? config.tls.cert, l.tls_key ?? config.tls.key);
    const listener = createSmtpListener(l, {
      config: () => current,
      spool,
      submitter,
      hostname,
      users,
      tls,
      log: logger("smtp"),
      metrics,
      hooks: smtpHooks,
      authThrottle,
      recipientCheck,
      senderDomainLookup: senderLookup,
    });
    if (tls && config.tls.watch) {
      stopWatchers.push(watchTlsFiles(tls, (fresh) => {
        listener.updateTls(fresh);
        log.info("reloaded TLS certificate {cert} for {listener}", { cert: fresh.certPath, listener: listener.name });
      }, (err) => log.error("TLS reload failed, keeping the old certificate: {error}", { error: err.message })));
    }
    listeners.push(listener);
  }
  const addresses: { name: string; role: string; host: string; port: number }[] = [];
  try {
    for (const listener of listeners) {
      const addr = await listener.listen();
      addresses.push({ name: listener.name, role: listener.role, ...addr });
      log.info("listening on {host}:{port} ({role})", { ...addr, role: listener.role, name: listener.name });
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close(0).catch(() => {})));
    await store.close();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  let lastReload: ReloadReport | undefined;
  const recordReload = (r: { ok: boolean; error?: string; changed: string[]; needsRestart: string[] }) =>
    lastReload = { at: Date.now(), ...r };
  stopWatchers.push(
    watchConfig(configPath, () => current, (next) => current = next, logger("config"), recordReload),
  );
  // The DSN service queues reports through the submitter; its "queued" event hands them to delivery.
  const dsn = createDsnService({
    config: () => current,
    spool,
    submitter,
    hostname,
    log: logger("dsn"),
    audit: logger("audit"),
    onBackscatterCandidate: (e) => metrics.backscatterCandidates.inc({ decision: e.decision, reason: e.reason }),
  });
  const pool = createConnectionPool({
    maxPerDestination: d.max_connections_per_domain,
    idleTimeoutMs: d.pool.idle_timeout,
    maxMessagesPerConnection: d.pool.max_messages_per_connection,
  });
  const delivery = createDeliveryEngine({
    config: () => current,
    store,
    spool,
    hostname,
    log: logger("delivery"),
    resolver,
    pool,
    ownAddresses: () => addresses,
    events: chainDeliveryEvents(moduleDeliveryEvents(modules), webhooks.events, {
      finished: dsn.finished,
      deferred: dsn.deferred,
      failedWithoutAttempt: (record, recipients, reason) => {
        totals.failed += recipients.length;
        for (const rcpt of recipients) {
          const r = record.recipients.find((x) => x.address === rcpt);
          audit.write({
            type: "delivery",
            id: record.id,
            sender: record.sender,
            recipient: rcpt,
            mx: null,
            outcome: "failed",
            reply: r?.lastReply ?? reason,
            reason,
            duration_ms: 0,
            attempt: r?.attempts ?? 0,
          });
        }
      },
      attempt: (record, attempt) => {
        for (const r of attempt.result) {
          metrics.deliveryAttempts.inc({ result: r.outcome });
          totals[r.outcome]++;
          audit.write({
            type: "delivery",
            id: record.id,
            sender: record.sender,
            recipient: r.address,
            mx: attempt.server ?? null,
            tls: attempt.tls ?? false,
            outcome: r.outcome,
            code: r.code ?? null,
            reply: r.reply,
            duration_ms: attempt.durationMs,
            attempt: record.recipients.find((x) => x.address === r.address)?.attempts ?? 0,
          });
        }
        const domain = attempt.recipients[0]?.split("@").pop()?.toLowerCase() ?? "unknown";
        metrics.deliveryDuration.observe({ domain: metrics.domainLabel(domain) }, attempt.durationMs / 1000);
      },
    }),
  });
  metrics.gauge("empath_queue_messages", "Messages in the queue by status", ["status"], async (set) => {
    for (const [status, n] of Object.entries(await store.counts())) set({ status }, n);
  });
  metrics.gauge("empath_queue_oldest_age_seconds", "Age of the oldest queued message", [], async (set) => {
    for await (const r of store.list({ limit: 1 })) return set({}, (Date.now() - r.receivedAt) / 1000);
    set({}, 0);
  });
  metrics.gauge("empath_dns_cache_entries", "Entries in the DNS cache", [], (set) => set({}, resolver.size));
  metrics.gauge("empath_delivery_active_connections", "Outbound SMTP connections in use", [], (set) => {
    set({}, pool.stats().reduce((n, s) => n + s.active, 0));
  });
  metrics.gauge("empath_circuit_breaker_open", "1 while a destination's circuit breaker is open", ["domain"], (set) => {
    for (const s of delivery.limits.all()) set({ domain: metrics.domainLabel(s.domain) }, s.circuit === "open" ? 1 : 0);
  });
  metrics.gauge(
    "empath_spool_bytes",
    "Bytes of message data in the spool",
    [],
    async (set) => set({}, await spool.usage()),
  );
  let http: HttpServer | undefined;
  if (config.http.enabled) {
    let dnsOk: { at: number; ok: Promise<void> } | undefined;
    http = await startHttp(config.http.address, metrics, {
      spool: () => spool.probe(),
      queue: () => store.probe(),
      listeners: () => stopping ? Promise.reject(new Error("shutting down")) : Promise.resolve(),
      dns: () => {
        // Any answer (even NXDOMAIN) proves the resolver works; cached for 10 s.
        if (!dnsOk || Date.now() - dnsOk.at > 10_000) {
          dnsOk = {
            at: Date.now(),
            ok: resolver.mx("health-check.invalid").then(() => {}, (err) => {
              if (!(err as { permanent?: boolean }).permanent) throw err;
            }),
          };
        }
        return dnsOk.ok;
      },
    });
    log.info("listening on {host}:{port} (http)", { host: http.host, port: http.port, role: "http", name: "http" });
  }
  submitter.onQueued((record) => delivery.wake(record));
  delivery.start();
  webhooks.start();

  let control: ControlServer | undefined;
  if (config.control.enabled) {
    control = await startControlServer({
      path: controlPath,
      token: controlToken,
      maxRequest: config.control.max_request,
      timeoutMs: config.control.timeout,
      log: logger("control"),
      audit,
      handlers: createHandlers({
        version: VERSION,
        startedAt,
        configPath,
        config: () => current,
        addresses,
        store,
        spool,
        delivery,
        resolver,
        sessions: () => listeners.flatMap((l) => l.sessions()),
        reload: async () =>
          recordReload(await reloadConfig(configPath, () => current, (next) => current = next, logger("config"))),
        lastReload: () => lastReload,
        logLevel,
        setLogLevel: (level) => setLogLevel(level as Parameters<typeof setLogLevel>[0]),
        totals: () => ({ ...totals }),
      }),
    });
  }

  return {
    get config() {
      return current;
    },
    configPath,
    hostname,
    spool,
    store,
    listeners,
    addresses,
    recovery,
    delivery,
    metrics,
    http,
    control,
    audit,
    startedAt,
    submitter,
    stop(graceMs = 30_000) {
      stopping ??= (async () => {
        log.info("shutting down: closing listeners, waiting up to {grace}ms for sessions in DATA", { grace: graceMs });
        stopWatchers.forEach((stop) => stop());
        await control?.close();
        await Promise.all(listeners.map((l) => l.close(graceMs)));
        await delivery.stop(Math.min(graceMs, current.delivery.grace_period));
        await webhooks.stop();
        await modules.close();
        await http?.close();
        await store.close();
        await audit.close();
        log.info("shutdown complete");
      })();
      return stopping;
    },
    /** @internal for config reload */
    set config(next: Config) {
      current = next;
    },
  } as Daemon;
}
