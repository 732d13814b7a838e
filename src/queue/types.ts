/**
 * Queue state of one message: envelope, per-recipient status, attempts, schedule,
 * DSN parameters and module metadata. This is what every QueueStore persists.
 * @module
 */

/** Where a message stands as a whole. */
export type MessageStatus =
  | "queued" // waiting for its next attempt (first or retry)
  | "delivering" // an attempt is in flight
  | "deferred" // at least one attempt failed temporarily, retry scheduled
  | "frozen" // held by the operator
  | "delivered" // all recipients done, at least one delivered (record kept only until cleanup)
  | "failed"; // all recipients done, none delivered

/**
 * How urgently a message should leave: higher levels are served first (per destination too), lower
 * ones keep a bounded share so they are never starved. Absent on a record means "normal".
 */
export type Priority = "critical" | "high" | "normal" | "low";

/** Every priority level, highest first. */
export const PRIORITIES: readonly Priority[] = ["critical", "high", "normal", "low"];

/** Where one recipient stands. */
export type RecipientStatus = "pending" | "deferred" | "delivered" | "failed" | "relayed" | "expanded";

/** RFC 3461 NOTIFY values. */
export type NotifyValue = "NEVER" | "SUCCESS" | "FAILURE" | "DELAY";

/** One recipient and its delivery state. */
export interface RecipientState {
  address: string;
  status: RecipientStatus;
  /** RFC 3461 NOTIFY (absent = default: FAILURE, plus DELAY at the MTA's discretion). */
  notify?: NotifyValue[];
  /** RFC 3461 ORCPT, as received ("rfc822;user@example.com"). */
  orcpt?: string;
  /** Last reply or error text, with code. */
  lastReply?: string;
  lastCode?: number;
  /** Remote MTA of the last attempt. */
  remoteMta?: string;
  attempts: number;
  updatedAt: number;
  /** Set once a delay DSN has been sent for this recipient. */
  delayNotified?: boolean;
  /** The next hop supported DSN, so NOTIFY was passed on (it reports success, not us). */
  dsnPassed?: boolean;
}

/** One delivery attempt, as recorded for `queue view`. */
export interface AttemptRecord {
  at: number;
  durationMs: number;
  server?: string;
  tls?: boolean;
  recipients: string[];
  /** Reply per recipient or connection error. */
  result: { address: string; code?: number; reply: string; outcome: "delivered" | "deferred" | "failed" }[];
  error?: string;
}

/** Who sent the message to us. */
export interface ClientInfo {
  address: string;
  port?: number;
  helo?: string;
  tls?: string;
  user?: string;
  listener: string;
  /**
   * The client could relay (relay network or authenticated). False marks mail from an outside
   * client: a DSN to its sender is a backscatter candidate. Absent on records from before this field.
   */
  trusted?: boolean;
}

/** The full queue record of one message. */
export interface QueueRecord {
  id: string;
  status: MessageStatus;
  /** Envelope sender; "" is the null reverse-path. */
  sender: string;
  recipients: RecipientState[];
  size: number;
  receivedAt: number;
  /** Epoch ms when the next attempt is due. */
  nextAttemptAt: number;
  attempts: AttemptRecord[];
  dsn: { ret?: "FULL" | "HDRS"; envid?: string };
  client: ClientInfo;
  smtpUtf8?: boolean;
  bodyType?: "7bit" | "8bitmime";
  /** Per-module notes persisted with the message. */
  metadata: Record<string, unknown>;
  /** Set when the message is a DSN we generated (never bounce a bounce). */
  isDsn?: boolean;
  frozenFrom?: MessageStatus;
  /** Set by listener, authenticated user or module at intake, or by the operator; absent = "normal". */
  priority?: Priority;
  updatedAt: number;
}

/** Statuses that wait in the schedule (have a due time). */
export const SCHEDULED_STATUSES: readonly MessageStatus[] = ["queued", "deferred"];

/** Filter for listing. */
export interface QueueFilter {
  status?: MessageStatus;
  domain?: string;
  /** Only messages of this level (absent priority counts as "normal"). */
  priority?: Priority;
  limit?: number;
}
