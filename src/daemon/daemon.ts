/**
 * The running daemon: opens the spool and queue store, recovers, starts the
 * listeners, and shuts everything down in order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfig } from "../config/load.ts";
 * import { startDaemon } from "./daemon.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const toml = `data_dir = "${dir}"\n[[listeners]]\naddress = "127.0.0.1:0"\n`;
 * const daemon = await startDaemon({ config: parseConfig(toml, `${dir}/config.toml`), path: `${dir}/config.toml` });
 * assert.equal(daemon.listeners.length, 1); // listening on daemon.addresses[0].port
 * await daemon.stop();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { join, resolve } from "node:path";
import type { Config, LoadedConfig } from "../config/mod.ts";
import { logger } from "../observability/log.ts";
import { reloadConfig, type ReloadResult, watchConfig } from "./reload.ts";
import { recipientChecks, senderDomainLookup } from "./recipients.ts";
import {
  checkRecipientsFile,
  checkRoles,
  explainListenError,
  readControlToken,
  warnShortHostname,
} from "./startup_checks.ts";
import { storedAuthThrottle } from "./auth_lockouts.ts";
import { registerGauges } from "./gauges.ts";
import { openStorage } from "./storage.ts";
import { checkDkimKeys, createMailAuth } from "./mail_auth.ts";
import { createDaemonEvents } from "./events.ts";
import {
  type AuditLog,
  createAuditLog,
  createMetrics,
  createSmtpTrace,
  type HttpServer,
  logLevel,
  type Metrics,
  setLogLevel,
  startHttp,
} from "../observability/mod.ts";
import {
  claimSocketPath,
  type ControlContext,
  type ControlServer,
  createHandlers,
  type ReloadReport,
  startControlServer,
  type Totals,
} from "../control/mod.ts";
import { VERSION } from "../version.ts";
import { webConsole, webCredentials } from "./web_console.ts";
import { createDsnService } from "../dsn/mod.ts";
import {
  chainDeliveryEvents,
  createSmtpBridge,
  loadModules,
  moduleDeliveryEvents,
  moduleDnsListener,
} from "../modules/mod.ts";
import {
  createConnectionPool,
  createDeliveryEngine,
  createResolver,
  createWorkerPool,
  type DeliveryEngine,
  setupTransportSecurity,
} from "../delivery/mod.ts";
import { createSubmitter, priorityOf, type QueueStore, type RecoveryReport, type Submitter } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";
import { joinCluster } from "./cluster.ts";
import {
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

/** Starts Empath with a loaded config. Throws ConfigError for problems found at start-up. */
export async function startDaemon(loaded: LoadedConfig): Promise<Daemon> {
  const { config, path: configPath } = loaded;
  checkRoles(config, configPath);
  const log = logger("daemon");
  const hostname = config.smtp.hostname ?? Deno.hostname();
  warnShortHostname(hostname, config.smtp.hostname !== undefined, log);
  const dataDir = resolve(config.data_dir);
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const startedAt = Date.now();
  // A second instance on the same data is refused before it touches anything.
  // loadConfig made relative paths absolute against the config file's directory (config/paths.ts).
  const controlPath = config.control.socket ? resolve(config.control.socket) : join(dataDir, "control.sock");
  if (config.control.enabled) await claimSocketPath(controlPath, log);
  const controlToken = await readControlToken(config, configPath);

  const users: UserDb | undefined = config.auth.users_file ? await loadUsers(config.auth.users_file) : undefined;
  await checkRecipientsFile(config, configPath);
  checkDkimKeys(config, configPath);
  const webLogins = config.http.enabled && config.web.enabled ? await webCredentials(config) : undefined;
  const modules = await loadModules(config.modules, { configPath });
  const tlsCache = new Map<string, TlsFiles>();
  const stopWatchers: (() => void)[] = [];
  const tlsFor = async (cert?: string, key?: string) => {
    if (!cert || !key) return undefined;
    const k = `${cert}\0${key}`;
    if (!tlsCache.has(k)) tlsCache.set(k, await loadTlsFiles(cert, key));
    return tlsCache.get(k);
  };

  const { pg, spool, store, recovery } = await openStorage(config, dataDir, configPath, log);

  const submitter = createSubmitter({
    store,
    spool,
    priorityOf: (envelope) => priorityOf(current, envelope),
    onListenerError: (err, record) =>
      log.error("a queued listener failed for {id}: {error}", { id: record.id, error: String(err) }),
  });
  const metrics = createMetrics({ maxDomains: config.http.metrics_domains });
  const auditTarget = !config.audit.enabled
    ? ""
    : config.audit.file === "-"
    ? "-"
    : config.audit.file
    ? resolve(config.audit.file)
    : join(dataDir, "audit.log");
  const audit = createAuditLog({
    target: auditTarget,
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
    minTtlMs: d.dns.min_ttl,
    negativeTtlMs: d.dns.negative_ttl,
    maxEntries: d.dns.max_entries,
    onLookup: (e) => {
      moduleDns?.(e);
      if (!e.cached) metrics.dnsLookupDuration.observe({ type: e.type, result: e.result }, e.durationMs / 1000);
    },
  });
  let current = config;
  const mailAuth = createMailAuth({ config: () => current, hostname, resolver, log: logger("auth"), audit });
  // Mailed TLS-RPT reports are DKIM-signed like submitted mail.
  const sec = { config, resolver, store, log: logger("delivery"), submitter, hostname, sign: mailAuth.signOwn };
  const transportSecurity = await setupTransportSecurity(sec);
  /** Every config change goes through here: the DKIM keys are reloaded with it. */
  const applyConfig = (next: Config) => {
    current = next;
    mailAuth.reload(next);
  };
  const listeners: SmtpListener[] = [];
  const authThrottle = await storedAuthThrottle(store, logger("smtp")); // per client address, all listeners
  const recipientCheck = recipientChecks(() => current, hostname, logger("smtp"), metrics);
  const senderLookup = senderDomainLookup(resolver);
  // Modules plug into every listener's session hooks; without modules the SMTP path does no module work.
  const smtpHooks = modules.modules.length > 0 ? createSmtpBridge(modules, { spool, log: logger("smtp") }) : undefined;
  const trace = createSmtpTrace(); // `empathctl trace smtp`
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
      trace,
      messageAuth: () => mailAuth.messageAuth(),
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
    for (const [i, listener] of listeners.entries()) {
      const addr = await listener.listen().catch((err) => {
        throw explainListenError(err, `listeners[${i}].address`, config.listeners[i]!.address);
      });
      addresses.push({ name: listener.name, role: listener.role, ...addr });
      log.info("listening on {host}:{port} ({role})", { ...addr, role: listener.role, name: listener.name });
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close(0).catch(() => {})));
    mailAuth.close();
    await store.close();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  let lastReload: ReloadReport | undefined;
  const recordReload = (r: ReloadResult) => lastReload = { at: Date.now(), ...r };
  const reloadOptions = { path: configPath, started: config, current: () => current, log: logger("config") };
  stopWatchers.push(watchConfig({ ...reloadOptions, apply: applyConfig, onResult: recordReload }));
  // The DSN service queues reports through the submitter; its "queued" event hands them to delivery.
  const dsn = createDsnService({
    config: () => current,
    spool,
    submitter,
    hostname,
    log: logger("dsn"),
    audit: logger("audit"),
    auditLog: audit,
    onBackscatterCandidate: (e) => metrics.backscatterCandidates.inc({ decision: e.decision, reason: e.reason }),
  });
  const poolOptions = {
    maxPerDestination: d.max_connections_per_domain,
    idleTimeoutMs: d.pool.idle_timeout,
    maxMessagesPerConnection: d.pool.max_messages_per_connection,
  };
  const pool = d.worker ? createWorkerPool(poolOptions) : createConnectionPool(poolOptions);
  const delivery = createDeliveryEngine({
    config: () => current,
    store,
    spool,
    hostname,
    log: logger("delivery"),
    resolver,
    pool,
    security: transportSecurity.security,
    onTlsFailure: (reason) => metrics.tlsFailures.inc({ direction: "outbound", reason }),
    ownAddresses: () => addresses,
    trace,
    owner: pg?.owner,
    leaseMs: config.queue.lease,
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
        for (const r of attempt.result) {
          metrics.deliveryOutcomes.inc({ domain: metrics.domainLabel(domain), result: r.outcome });
        }
        metrics.deliveryDuration.observe({ domain: metrics.domainLabel(domain) }, attempt.durationMs / 1000);
      },
    }),
  });
  registerGauges(metrics, { store, spool, resolver, pool, delivery });
  const cluster = pg && await joinCluster(pg, delivery, { hostname, ...config.queue });
  const controlContext: ControlContext = {
    version: VERSION,
    startedAt,
    configPath,
    config: () => current,
    addresses,
    store,
    spool,
    delivery: cluster?.engine ?? delivery,
    resolver,
    sessions: () => listeners.flatMap((l) => l.sessions()),
    reload: async () => recordReload(await reloadConfig({ ...reloadOptions, apply: applyConfig })),
    lastReload: () => lastReload,
    logLevel,
    setLogLevel: (level) => setLogLevel(level as Parameters<typeof setLogLevel>[0]),
    totals: () => ({ ...totals }),
    auditFile: auditTarget && auditTarget !== "-" ? auditTarget : undefined,
    killSession: (id) => listeners.some((l) => l.kill(id)),
    trace,
    cluster: cluster && { node: cluster.node.id, nodes: cluster.nodes },
    tlsRpt: transportSecurity.rpt,
  };
  let http: HttpServer | undefined;
  const web = webLogins ? webConsole(config, webLogins, controlContext, audit) : undefined;
  if (config.http.enabled) {
    let dnsOk: { at: number; ok: Promise<void> } | undefined;
    http = await startHttp(
      config.http.address,
      metrics,
      {
        spool: () => spool.probe(),
        queue: () => store.probe(),
        ...(cluster ? { postgres: cluster.ready } : {}),
        listeners: () => stopping ? Promise.reject(new Error("shutting down")) : Promise.resolve(),
        dns: () => {
          // Asks the configured resolver itself (not the cache); any answer proves it works. Cached for 5 s.
          if (!dnsOk || Date.now() - dnsOk.at > 5_000) dnsOk = { at: Date.now(), ok: resolver.probe() };
          return dnsOk.ok;
        },
      },
      () => web?.app,
      () => {
        const dnssec = transportSecurity.dnssecStatus();
        return { dane: dnssec.validating ? "in effect" : `not in effect: ${dnssec.detail}` };
      },
    ).catch((err) => {
      throw explainListenError(err, "http.address", config.http.address);
    });
    log.info("listening on {host}:{port} (http)", { host: http.host, port: http.port, role: "http", name: "http" });
    if (web) {
      web.start(http.port);
      log.info("web console on http://{host}:{port}/console", { host: http.host, port: http.port });
    }
  }
  submitter.onQueued((record) => delivery.wake(record));
  await delivery.restoreState(); // freeze, suspensions, overrides, rates and last errors from before a restart
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
      handlers: createHandlers(controlContext),
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
        mailAuth.close();
        await delivery.stop(Math.min(graceMs, current.delivery.grace_period));
        await cluster?.stop();
        await webhooks.stop();
        await modules.close();
        web?.stop(); // ends live-counter streams, which would hold up the HTTP shutdown
        await http?.close();
        await transportSecurity.close();
        await store.close();
        await audit.close();
        log.info("shutdown complete");
      })();
      return stopping;
    },
    /** @internal for config reload */
    set config(next: Config) {
      applyConfig(next);
    },
  } as Daemon;
}
