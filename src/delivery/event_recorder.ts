/**
 * Delivery events for webhook subscribers: turns what the engine reports (attempts,
 * recipients failed without an attempt, deduplicated recipients) and what intake
 * reports (received mail, DSNs queued) into one JSON document per recipient and
 * event, and writes it durably to the queue store's outbox, once per subscription
 * that wants the type. The attempt's events are written before the record is updated,
 * so a crash can repeat an event (at-least-once) but never lose one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfig } from "../config/mod.ts";
 * import { newQueueRecord } from "../queue/submit.ts";
 * import type { OutboxEntry } from "../queue/mod.ts";
 * import { createEventRecorder } from "./event_recorder.ts"; // @ts-ignore deno#26900
 *
 * const config = parseConfig(`[[events.webhooks]]\nurl = "https://hooks.example/mail"\n`, "config.toml");
 * const added: OutboxEntry[] = [];
 * const recorder = createEventRecorder({ config: () => config, store: { outboxAdd: (e) => Promise.resolve(void added.push(...e)) } });
 * const envelope = { sender: "a@example.org", recipients: [{ address: "bob@example.com" }], client: { address: "127.0.0.1", listener: "mx" } };
 * const record = newQueueRecord({ id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R", size: 20 }, envelope, 0);
 * await recorder.events.attempt!(record, { at: 0, durationMs: 5, server: "mx.example.com", recipients: ["bob@example.com"], result: [{ address: "bob@example.com", code: 250, reply: "250 2.0.0 ok", outcome: "delivered" }] });
 * assert.equal(JSON.parse(added[0]!.body).type, "delivered");
 * ```
 * @module
 */
import type { Config, EventType } from "../config/mod.ts";
import type { AttemptRecord, QueueRecord, QueueStore } from "../queue/mod.ts";
import { ulid } from "../spool/mod.ts";
import type { DeliveryEvents } from "./lifecycle.ts";

/** One delivery event as sent to subscribers (JSON). */
export interface DeliveryEventDoc {
  /** Unique per event (a ULID); a repeated delivery of the same event keeps it. */
  id: string;
  type: EventType;
  /** ISO time the event happened. */
  at: string;
  message_id: string;
  sender: string;
  recipient: string;
  domain: string;
  /** Attempts made for this recipient so far (0 when none was needed). */
  attempt: number;
  remote_host: string | null;
  reply: string | null;
  /** "success", "transient" (will be retried) or "permanent"; "expired" for queue lifetime. */
  classification: "success" | "transient" | "permanent" | "expired";
  /** RFC 3463 status from the reply, when there is one. */
  status: string | null;
  priority: string;
  /** Set on "delivered" when the recipient had been delivered before and was not sent again. */
  deduplicated?: true;
  /** For "dsn-sent": the message the DSN reports on. */
  dsn_for?: string;
}

/** What the recorder needs. */
export interface EventRecorderOptions {
  config: () => Pick<Config, "events">;
  store: Pick<QueueStore, "outboxAdd">;
  clock?: () => number;
}

/** The recorder: engine events, plus intake's. */
export interface EventRecorder {
  events: DeliveryEvents;
  /** A message was queued (received, or a DSN we generated). */
  queued(record: QueueRecord): Promise<void>;
}

const domainOf = (a: string) => a.slice(a.lastIndexOf("@") + 1).toLowerCase();
const statusOf = (reply: string | undefined) => /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply ?? "")?.[1] ?? null;
const CLASS = { delivered: "success", deferred: "transient", failed: "permanent" } as const;

/** Creates the recorder; subscriptions are read from config on every event (reload applies). */
export function createEventRecorder(options: EventRecorderOptions): EventRecorder {
  const clock = options.clock ?? Date.now;

  async function record(docs: Omit<DeliveryEventDoc, "id" | "at">[]) {
    const subs = options.config().events.webhooks;
    if (subs.length === 0 || docs.length === 0) return;
    const now = clock();
    const entries = [];
    for (const doc of docs) {
      const id = ulid(now);
      const body = JSON.stringify({ id, at: new Date(now).toISOString(), ...doc });
      for (const sub of subs) {
        if (sub.events.includes(doc.type)) entries.push({ id: ulid(now), target: sub.name ?? sub.url, at: now, body });
      }
    }
    if (entries.length > 0) await options.store.outboxAdd(entries);
  }

  const base = (r: QueueRecord, address: string) => {
    const state = r.recipients.find((x) => x.address === address);
    return {
      message_id: r.id,
      sender: r.sender,
      recipient: address,
      domain: domainOf(address),
      attempt: state?.attempts ?? 0,
      priority: r.priority ?? "normal",
      remote_host: state?.remoteMta ?? null,
      reply: state?.lastReply ?? null,
      status: statusOf(state?.lastReply),
    };
  };

  return {
    events: {
      attempt: (r: QueueRecord, attempt: AttemptRecord) =>
        record(attempt.result.map((x) => ({
          ...base(r, x.address),
          type: x.outcome === "failed" ? "bounced" as const : x.outcome,
          remote_host: attempt.server ?? null,
          reply: x.reply,
          status: statusOf(x.reply),
          classification: CLASS[x.outcome],
        }))),
      deduplicated: (r, recipients) =>
        record(recipients.map((a) => ({
          ...base(r, a),
          type: "delivered" as const,
          classification: "success" as const,
          deduplicated: true as const,
        }))),
      failedWithoutAttempt: (r, recipients, reason) =>
        record(recipients.map((a) => ({
          ...base(r, a),
          type: reason === "expired" ? "expired" as const : "bounced" as const,
          classification: reason === "expired" ? "expired" as const : "permanent" as const,
        }))),
    },
    queued: (r) =>
      record(r.recipients.map((x) => ({
        ...base(r, x.address),
        type: r.isDsn ? "dsn-sent" as const : "received" as const,
        classification: "success" as const,
        ...(r.isDsn && typeof r.metadata.dsnFor === "string" ? { dsn_for: r.metadata.dsnFor } : {}),
      }))),
  };
}
