/**
 * What each control command answers: plain JSON-shaped result types, shared by
 * the daemon's handlers and every client (CLI, dashboard, cluster peers).
 * Fields typed `?` are left out of the JSON when absent.
 * @module
 */
import type { CacheEntry } from "../delivery/mod.ts";
import type { MessageStatus, Priority, QueueRecord } from "../queue/mod.ts";
import type { SessionInfo } from "../smtp/mod.ts";

/** A DNS cache entry (`dns.list-cache`, `dns.refresh`). */
export type { CacheEntry };

/** The outcome of the last config reload. */
export interface ReloadReport {
  at: number;
  ok: boolean;
  error?: string;
  changed: string[];
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
}

/** `system.log-level`. */
export interface LogLevelResult {
  level: string;
  previous: string;
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
