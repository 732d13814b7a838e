/**
 * Decides which DSNs a message earns and queues them as ordinary messages (null
 * reverse-path, delivered by the normal engine, surviving restarts):
 * - failure reports for failed recipients unless NOTIFY excludes FAILURE;
 * - delay warnings once per recipient after `dsn.delay_warning` in the queue,
 *   unless NOTIFY excludes DELAY;
 * - success reports for NOTIFY=SUCCESS: "relayed" when the next hop did not
 *   support DSN (RFC 3461 6.2); when it did, NOTIFY was passed on and the next
 *   hop reports, so we stay silent.
 * Never bounce a bounce: a message with the null sender (or one we generated)
 * gets no DSN; the drop is a `{"type":"dsn","outcome":"suppressed"}` line in the audit log
 * (and a warning on the audit log category). A DSN for mail from an
 * outside client is a backscatter candidate: counted, logged, and never sent to an
 * address literal. Returned content is capped at `dsn.full_message_limit` whatever RET says.
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import type { AuditLog } from "../observability/mod.ts";
import type { QueueRecord, RecipientState, Submitter } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";
import { domainOf, isAddressLiteral } from "../util/address.ts";
import { buildDsn, type DsnRecipientReport, statusOf } from "./build.ts";

/** What the service needs. */
export interface DsnDeps {
  config: () => Config;
  /** Where the original messages are read from. */
  spool: Spool;
  /** Queues the DSNs (its "queued" event hands them to delivery). */
  submitter: Submitter;
  hostname: string;
  log: Logger;
  audit: Logger;
  /** The audit log file: DSNs that are not sent (never bounce a bounce, suppressed backscatter) get a line. */
  auditLog?: Pick<AuditLog, "write">;
  /** Told of every DSN that would go to the sender of mail from an outside client, with the decision. */
  onBackscatterCandidate?: (event: BackscatterCandidate) => void;
}

/** A DSN for mail from an outside (unauthenticated, non-relay) client: it could be backscatter. */
export interface BackscatterCandidate {
  id: string;
  kind: "failure" | "delay" | "success";
  sender: string;
  decision: "sent" | "suppressed";
  reason: "validated-sender" | "address-literal" | "invalid-domain";
}

/** The DSN service, plugged into the delivery engine's events. */
export interface DsnService {
  finished(record: QueueRecord): Promise<void>;
  /** May set `delayNotified` on recipients; the caller persists the record. */
  deferred(record: QueueRecord): Promise<void>;
}

const wants = (r: RecipientState, what: "FAILURE" | "DELAY" | "SUCCESS") =>
  r.notify ? r.notify.includes(what) : what !== "SUCCESS";

/** Creates the service. */
export function createDsnService(deps: DsnDeps): DsnService {
  const report = (r: RecipientState, action: DsnRecipientReport["action"], fallback: string, record: QueueRecord) => {
    const last = [...record.attempts].reverse().find((a) => a.recipients.includes(r.address));
    return {
      address: r.address,
      orcpt: r.orcpt,
      action,
      status: statusOf(r.lastReply, fallback),
      remoteMta: r.remoteMta?.replace(/\[.*$|:\d+$/, ""),
      diagnostic: r.lastCode && r.lastReply ? `smtp; ${r.lastReply}` : undefined,
      lastAttempt: last?.at,
      willRetryUntil: action === "delayed" ? record.receivedAt + deps.config().delivery.max_queue_lifetime : undefined,
    };
  };

  async function send(record: QueueRecord, kind: "failure" | "delay" | "success", recipients: DsnRecipientReport[]) {
    if (record.sender === "" || record.isDsn) {
      deps.auditLog?.write({
        type: "dsn",
        outcome: "suppressed",
        kind,
        id: record.id,
        sender: record.sender,
        reason: record.sender === "" ? "null-sender" : "dsn-of-dsn",
        recipients: recipients.map((r) => ({ address: r.address, action: r.action, status: r.status })),
      });
      deps.audit.warning(
        "not sending a {kind} DSN for {id}: its sender is the null reverse-path (never bounce a bounce)",
        {
          kind,
          id: record.id,
          recipients: recipients.map((r) => `${r.address}=${r.action}`),
        },
      );
      return;
    }
    if (record.client.trusted === false && !backscatterCheck(record, kind)) return;
    const original = await deps.spool.readAll(record.id);
    const limit = deps.config().dsn.full_message_limit;
    // The returned content is capped whatever RET asks (Postfix bounce_size_limit): RET=FULL
    // on a large message gets its headers only, so a DSN never carries a large attacker payload.
    const ret = record.size > limit ? "HDRS" : record.dsn.ret ?? "FULL";
    const bytes = await buildDsn({ reportingMta: deps.hostname, kind, record, recipients, original, ret });
    const dsn = await deps.submitter.submit({
      data: bytes,
      envelope: {
        sender: "",
        recipients: [{ address: record.sender, notify: ["NEVER"] }],
        client: { address: "127.0.0.1", listener: "dsn" },
        metadata: { dsnFor: record.id, dsnKind: kind },
        isDsn: true,
      },
    });
    deps.log.info("{kind} DSN {dsn} for {id} queued to <{to}>", {
      kind,
      dsn: dsn.id,
      id: record.id,
      to: record.sender,
    });
  }

  /**
   * Mail from an outside client was accepted only after its sender domain was checked at MAIL FROM
   * and its recipients at RCPT, so a DSN to it is expected to be rare and legitimate; still, each is
   * counted and logged, and one that would go to an address literal or a name that is not a domain
   * (e.g. a record written before those checks existed) is not sent.
   */
  function backscatterCheck(record: QueueRecord, kind: BackscatterCandidate["kind"]): boolean {
    const domain = domainOf(record.sender);
    const reason: BackscatterCandidate["reason"] = !domain
      ? "invalid-domain"
      : isAddressLiteral(domain)
      ? "address-literal"
      : "validated-sender";
    const decision = reason === "validated-sender" ? "sent" : "suppressed";
    deps.onBackscatterCandidate?.({ id: record.id, kind, sender: record.sender, decision, reason });
    const fields = { kind, id: record.id, to: record.sender, client: record.client.address, decision, reason };
    if (decision === "sent") {
      deps.audit.info(
        "backscatter candidate: {kind} DSN for {id} to <{to}> (mail from outside client {client}): {decision}, {reason}",
        fields,
      );
    } else {
      deps.auditLog?.write({ type: "dsn", outcome: "suppressed", ...fields });
      deps.audit.warning(
        "backscatter candidate: {kind} DSN for {id} to <{to}> (mail from outside client {client}): {decision}, {reason}",
        fields,
      );
    }
    return decision === "sent";
  }

  return {
    async finished(record) {
      const failed = record.recipients.filter((r) => r.status === "failed" && wants(r, "FAILURE"));
      if (failed.length > 0) await send(record, "failure", failed.map((r) => report(r, "failed", "5.0.0", record)));
      const relayed = record.recipients.filter((r) =>
        (r.status === "delivered" || r.status === "relayed") && wants(r, "SUCCESS") && !r.dsnPassed
      );
      if (relayed.length > 0) await send(record, "success", relayed.map((r) => report(r, "relayed", "2.0.0", record)));
    },
    async deferred(record) {
      const after = deps.config().dsn.delay_warning;
      if (after <= 0 || Date.now() - record.receivedAt < after) return;
      const late = record.recipients.filter((r) => r.status === "deferred" && !r.delayNotified && wants(r, "DELAY"));
      if (late.length === 0) return;
      late.forEach((r) => r.delayNotified = true);
      await send(record, "delay", late.map((r) => report(r, "delayed", "4.0.0", record)));
    },
  };
}
