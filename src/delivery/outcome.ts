/**
 * Applies delivery results to a queue record: per-recipient status and reply,
 * the attempt log (bounded), the message status and the next attempt time.
 * @module
 */
import type { AttemptRecord, QueueRecord, RecipientState } from "../queue/mod.ts";

/** What happened to one recipient in one attempt. */
export interface RecipientOutcome {
  address: string;
  outcome: "delivered" | "deferred" | "failed";
  code?: number;
  reply: string;
  remoteMta?: string;
  /** The receiving server supported DSN (NOTIFY/ORCPT were passed on). */
  remoteDsn?: boolean;
}

/** Attempts kept per record (older ones are dropped; counts stay in recipients[].attempts). */
export const MAX_ATTEMPTS_KEPT = 20;

/** True once a recipient needs no more attempts. */
export function isFinal(r: RecipientState): boolean {
  return r.status === "delivered" || r.status === "failed" || r.status === "relayed" || r.status === "expanded";
}

/** Recipients still waiting for delivery. */
export function pendingRecipients(record: QueueRecord): RecipientState[] {
  return record.recipients.filter((r) => !isFinal(r));
}

/** Records outcomes and an attempt on the record (mutates it). */
export function applyOutcomes(
  record: QueueRecord,
  outcomes: RecipientOutcome[],
  attempt?: AttemptRecord,
  now = Date.now(),
) {
  const byAddress = new Map(record.recipients.map((r) => [r.address, r]));
  for (const o of outcomes) {
    const r = byAddress.get(o.address);
    if (!r) continue;
    r.status = o.outcome;
    r.lastReply = o.reply;
    r.lastCode = o.code;
    r.remoteMta = o.remoteMta ?? r.remoteMta;
    if (o.remoteDsn !== undefined) r.dsnPassed = o.remoteDsn;
    r.attempts++;
    r.updatedAt = now;
  }
  if (attempt) {
    record.attempts.push(attempt);
    if (record.attempts.length > MAX_ATTEMPTS_KEPT) {
      record.attempts.splice(0, record.attempts.length - MAX_ATTEMPTS_KEPT);
    }
  }
  record.updatedAt = now;
}

/** Sets status and schedule once all groups of an attempt round are done. */
export function settle(record: QueueRecord, nextAttemptAt: number, now = Date.now()): "finished" | "waiting" {
  if (pendingRecipients(record).length === 0) {
    record.status = record.recipients.some((r) => r.status === "delivered" || r.status === "relayed")
      ? "delivered"
      : "failed";
    record.updatedAt = now;
    return "finished";
  }
  record.status = record.recipients.some((r) => r.status === "deferred") ? "deferred" : "queued";
  record.nextAttemptAt = nextAttemptAt;
  record.updatedAt = now;
  return "waiting";
}

/** Fails every pending recipient because the message spent too long in the queue (RFC 3464 4.4.7). */
export function expire(record: QueueRecord, lifetimeMs: number, now = Date.now()) {
  const days = Math.round(lifetimeMs / 86_400_000 * 10) / 10;
  applyOutcomes(
    record,
    pendingRecipients(record).map((r) => ({
      address: r.address,
      outcome: "failed" as const,
      // X.4.7 is by definition a persistent transient failure (RFC 3463), so the status is 4.4.7.
      reply: `4.4.7 Delivery time expired: message was in the queue longer than ${days} days` +
        (r.lastReply ? `; last reply: ${r.lastReply}` : ""),
    })),
    undefined,
    now,
  );
}
