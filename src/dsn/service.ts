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
 * gets no DSN; that is logged on the audit category instead.
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import type { QueueRecord, RecipientState, Submitter } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";
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
    const original = await deps.spool.readAll(record.id);
    const limit = deps.config().dsn.full_message_limit;
    const ret = record.dsn.ret ?? (record.size <= limit ? "FULL" : "HDRS");
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
