/**
 * What each control command answers: plain JSON-shaped result types, shared by
 * the daemon's handlers and every client (CLI, dashboard, cluster peers).
 * Fields typed `?` are left out of the JSON when absent.
 * @module
 */
import type { NodeInfo } from "../cluster/mod.ts";
import type { CacheEntry, TlsRptSummary } from "../delivery/mod.ts";
import type { TraceEvent } from "../observability/mod.ts";
import type { MessageStatus, Priority, QueueRecord, RecipientStatus } from "../queue/mod.ts";
import type { SessionInfo } from "../smtp/mod.ts";

/** A DNS cache entry (`dns.list-cache`, `dns.refresh`). */
export type { CacheEntry };

/** The outcome of the last config reload. */
export interface ReloadReport {
  at: number;
  ok: boolean;
  error?: string;
  /** Sections this reload changed in the running config (empty when the file watcher applied them first). */
  changed: string[];
  /** Sections that differ from the config at start and are in effect now. */
  applied?: string[];
  /** Settings that differ from the config at start and wait for a restart. */
  needsRestart: string[];
}

/** Running totals since start (rates are computed from them). */
export interface Totals {
  received: number;
  delivered: number;
  deferred: number;
  failed: number;
}

/** Messages per status. */
export type StatusCounts = Record<MessageStatus, number>;

/** `system.ping`. */
export interface PingResult {
  pong: true;
  version: string;
}

/** One listening address of the daemon. */
export interface ListenerAddress {
  name: string;
  role: string;
  host: string;
  port: number;
}

/** One node of a postgres-backed cluster (`cluster.nodes`, `system.status`): the cluster's own row type. */
export type ClusterNodeRow = NodeInfo;

/** `system.status`. */
export interface StatusResult {
  version: string;
  pid: number;
  startedAt: number;
  uptimeSeconds: number;
  configPath: string;
  listeners: ListenerAddress[];
  queue: StatusCounts;
  oldestAgeSeconds: number;
  dnsCacheEntries: number;
  deliveryFrozen: boolean;
  deliveryEnabled: boolean;
  inFlight: number;
  smtpSessions: number;
  logLevel: string;
  lastReload?: ReloadReport;
  /** queue.backend = "postgres": this node's id and every node of the cluster. */
  cluster?: { node: string; nodes: ClusterNodeRow[] };
}

/** `system.log-level`. */
export interface LogLevelResult {
  level: string;
  previous: string;
}

/** One recipient of a listed message and where it stands. */
export interface RecipientRow {
  address: string;
  status: RecipientStatus;
  attempts: number;
  lastReply?: string;
}

/** One message as listed by `queue.list`. */
export interface MessageRow {
  id: string;
  status: MessageStatus;
  sender: string;
  recipients: number;
  pending: number;
  domains: string[];
  size: number;
  receivedAt: number;
  nextAttemptAt: number;
  attempts: number;
  lastReply?: string;
  /** Every recipient with its state (shown with --json). */
  recipientStates: RecipientRow[];
  priority: Priority;
}

/** `queue.list`. */
export interface QueueListResult {
  messages: MessageRow[];
  /** More messages matched than the limit. */
  truncated: boolean;
}

/** `queue.view`: the full record, its main header fields, and whether it is being delivered now. */
export interface QueueViewResult extends QueueRecord {
  headers: Record<string, string>;
  inFlight: boolean;
}

/** `queue.freeze`. */
export interface FreezeResult {
  scope: "all" | "message" | "domain";
  frozen: number;
}

/** `queue.unfreeze`. */
export interface UnfreezeResult {
  scope: "all" | "message" | "domain";
  unfrozen: number;
}

/** A destination whose delivery is held until a time. */
export interface Suspension {
  domain: string;
  until: number;
}

/** One row of `queue.summary`. */
export interface DestinationRow {
  domain: string;
  messages: number;
  oldestAgeSeconds: number;
  lastError?: string;
  circuit: "closed" | "open" | "half-open";
  suspendedUntil?: number;
  activeConnections: number;
}

/** `queue.stats`. */
export interface QueueStatsResult {
  at: number;
  startedAt: number;
  counts: StatusCounts;
  total: number;
  oldestAgeSeconds: number;
  /** The 20 domains with most waiting messages. */
  domains: { domain: string; messages: number }[];
  totals: Totals;
}

/** A destination routed to a fixed host. */
export interface Override {
  domain: string;
  host: string;
  port: number;
}

/** One SMTP session of `smtp.connections`. */
export interface SessionRow extends SessionInfo {
  ageSeconds: number;
}

/** A bulk operation by selector (`queue delete|retry|hold|release|bounce` with selectors). */
export interface BulkResult {
  action: "delete" | "retry" | "hold" | "release" | "bounce";
  /** Messages the selector matched. */
  matched: number;
  /** Messages changed (0 on a dry run; fewer than matched when some were not in a state to change). */
  changed: number;
  dryRun: boolean;
}

/** `queue.cat`: the stored message, or its header section or body, base64 encoded. */
export interface CatResult {
  id: string;
  part: "all" | "headers" | "body";
  bytes: number;
  base64: string;
}

/** `message.history`: every audit event of one message, oldest first. */
export interface HistoryResult {
  id: string;
  /** The audit lines (delivery attempts, bounces, operator commands) that name the message. */
  events: Record<string, unknown>[];
  /** The audit files read. */
  files: string[];
}

/** One line of an SMTP conversation (`trace.smtp`). */
export type { TraceEvent };

/** One record of `dns.lookup`, its data in presentation form. */
export interface DnsLookupRecord {
  name: string;
  type: string;
  ttl: number;
  value: string;
}

/** `dns.lookup`: the records with their TTLs and the AD bit, or why there are none (NXDOMAIN, NODATA, TEMPFAIL). */
export interface DnsLookupResult {
  name: string;
  type: string;
  /** The answer came with AD from the resolver (DNSSEC validated). */
  ad: boolean;
  cached: boolean;
  expiresAt?: number;
  records: DnsLookupRecord[];
  error?: string;
  code?: string;
}

/** `tls.report`: today's TLS-RPT counters (UTC day), per domain and policy. */
export interface TlsReportResult {
  day: string;
  /** False when `[delivery.tls_rpt] enabled = false`. */
  enabled: boolean;
  rows: TlsRptSummary[];
}
