/**
 * Fakes for delivery unit tests: a manual clock, an in-memory queue store and
 * spool, a scripted transport and recorded events. No sockets, no sleeping.
 */
import { Readable } from "node:stream";
import { getLogger } from "@logtape/logtape";
import { parseConfig } from "../../src/config/mod.ts";
import type { AttemptRecord, QueueRecord } from "../../src/queue/mod.ts";
import type { Clock, DeliveryTransport, TransportJob, TransportResult } from "../../src/delivery/mod.ts";
import { sampleRecord } from "../queue/store_contract.ts";

export const log = getLogger(["empath", "test", "delivery"]);

/** A clock that moves only when told to. */
export function manualClock(start = 1_700_000_000_000): Clock & { advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
  };
}

/** Config from TOML, with backoff jitter off so delays are exact. */
export function testConfig(toml = "") {
  const config = parseConfig(`[delivery.retry]\njitter = 0\n${toml}`, "test.toml");
  return () => config;
}

/** A queue store in memory (copies in and out, like the real backends). */
export function memoryStore() {
  const records = new Map<string, QueueRecord>();
  return {
    records,
    get: (id: string) => Promise.resolve(records.has(id) ? structuredClone(records.get(id)!) : null),
    put: (record: QueueRecord) => Promise.resolve(void records.set(record.id, structuredClone(record))),
    delete: (id: string) => Promise.resolve(void records.delete(id)),
    async *list(filter?: { domain?: string }) {
      for (const r of records.values()) {
        if (!filter?.domain || r.recipients.some((x) => x.address.endsWith(`@${filter.domain}`))) {
          yield structuredClone(r);
        }
      }
    },
  };
}

/** A spool that only remembers deletions. */
export function memorySpool() {
  const deleted: string[] = [];
  return {
    deleted,
    readStream: () => Readable.from([new TextEncoder().encode("Subject: t\r\n\r\nbody\r\n")]),
    delete: (id: string) => Promise.resolve(void deleted.push(id)),
  };
}

/** A transport whose answers come from `answer`; every job is recorded. */
export function scriptedTransport(answer: (job: TransportJob, call: number) => TransportResult) {
  const jobs: TransportJob[] = [];
  const transport: DeliveryTransport & { jobs: TransportJob[] } = {
    kind: "fake",
    jobs,
    deliver(job) {
      jobs.push(job);
      return Promise.resolve(answer(job, jobs.length));
    },
  };
  return transport;
}

/** Replies by the recipient's local part: "ok…" 250, "later…" 451, "bad…" 550. */
export function replyByLocalPart(job: TransportJob): TransportResult {
  return {
    server: "mx.fake[192.0.2.1]:25",
    tls: true,
    recipients: job.message.recipients.map(({ address }) => {
      const code = address.startsWith("later") ? 451 : address.startsWith("bad") ? 550 : 250;
      const outcome = code === 250 ? "delivered" as const : code === 451 ? "deferred" as const : "failed" as const;
      return { address, code, reply: `${code} ${outcome}`, outcome, remoteMta: "mx.fake" };
    }),
  };
}

/** Every delivery event, in order. */
export function recordedEvents() {
  const seen: {
    kind: string;
    id: string;
    recipients?: string[];
    reason?: string;
    attempt?: AttemptRecord;
    record?: QueueRecord;
  }[] = [];
  return {
    seen,
    events: {
      attempt: (r: QueueRecord, attempt: AttemptRecord) => void seen.push({ kind: "attempt", id: r.id, attempt }),
      finished: (r: QueueRecord) => void seen.push({ kind: "finished", id: r.id, record: structuredClone(r) }),
      deferred: (r: QueueRecord) => void seen.push({ kind: "deferred", id: r.id }),
      failedWithoutAttempt: (r: QueueRecord, recipients: string[], reason: string) =>
        void seen.push({ kind: "failedWithoutAttempt", id: r.id, recipients, reason }),
      deduplicated: (r: QueueRecord, recipients: string[]) =>
        void seen.push({ kind: "deduplicated", id: r.id, recipients }),
    },
  };
}

/** A queued record for `addresses`, received at `now`. */
export function queuedRecord(now: number, addresses: string[]): QueueRecord {
  return sampleRecord({
    receivedAt: now,
    nextAttemptAt: now,
    updatedAt: now,
    recipients: addresses.map((address) => ({ address, status: "pending", attempts: 0, updatedAt: now })),
  });
}
