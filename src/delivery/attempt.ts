/**
 * One delivery attempt of one message: expiry first, then its pending recipients
 * grouped by domain, each group (a destination) delivered through the transport
 * picked for its domain, under the destination's limits (connections, rate,
 * circuit breaker). Per-recipient outcomes are recorded; deferred recipients get
 * the backoff delay, and a message whose recipients are all final is finished.
 *
 * No double delivery: recipients the next hop accepted are marked in the store
 * (`markDelivered`, group-committed) the moment the transport returns, before anything
 * else is written; an attempt first drops recipients already marked (after a crash, a
 * retry, or an operator re-queue of the same message), reporting them as `deduplicated`.
 *
 * All times come from the injected {@link Clock}, so tests advance time instead of
 * waiting.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { parseConfig } from "../config/load.ts";
 * import { openKvStore } from "../queue/kv_store.ts";
 * import { createSubmitter } from "../queue/submit.ts";
 * import { openSpool } from "../spool/store.ts";
 * import { createLifecycle } from "./lifecycle.ts";
 * import { DestinationLimits } from "./limits.ts";
 * import { allRecipients } from "./transport.ts";
 * import { createAttemptRunner } from "./attempt.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const [store, spool, log] = [await openKvStore(`${dir}/queue.kv`), await openSpool(`${dir}/spool`), getLogger(["empath"])];
 * const envelope = { sender: "", recipients: [{ address: "bob@example.com" }], client: { address: "127.0.0.1", listener: "mx" } };
 * const record = await createSubmitter({ store, spool }).submit({ data: new TextEncoder().encode("Subject: hi\r\n\r\n"), envelope });
 * const runner = createAttemptRunner({
 *   config: () => parseConfig("", "config.toml"),
 *   store,
 *   spool,
 *   log,
 *   limits: new DestinationLimits(() => ({ maxConnections: 5, failures: 5, cooldownMs: 60_000 })),
 *   transportFor: () => ({ kind: "sink", deliver: (job) => Promise.resolve({ recipients: allRecipients(job.message.recipients.map((r) => r.address), "delivered", "250 ok") }) }),
 *   lifecycle: createLifecycle({ store, spool, log }),
 * });
 * await runner.deliverMessage(record, true);
 * assert.equal(await store.get(record.id), null); // every recipient delivered: the record is gone
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import { endSpan, startSpan } from "../observability/tracing.ts";
import type { AttemptRecord, QueueRecord, QueueStore } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";
import { retryDelay } from "./backoff.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { Lifecycle } from "./lifecycle.ts";
import type { DestinationLimits } from "./limits.ts";
import { PriorityGate } from "./priority_gate.ts";
import { applyOutcomes, expire, pendingRecipients, type RecipientOutcome, settle } from "./outcome.ts";
import type { OutboundMessage, TransportSelector } from "./transport.ts";
import { REQUIRETLS_KEY, TLS_OPTIONAL_KEY } from "../util/requiretls.ts";

/** The reply recorded for a recipient skipped because it was delivered before. */
export const DEDUP_REPLY = "250 2.0.0 Already delivered to this recipient (not sent again)";

/** How long a delivery waits in place for a busy or rate-limited destination before rescheduling. */
const MAX_BUSY_WAIT_MS = 1000;

/** What the attempt runner needs. */
export interface AttemptOptions {
  config: () => Config;
  store: Pick<QueueStore, "get" | "put"> & Partial<Pick<QueueStore, "markDelivered" | "deliveredOf">>;
  spool: Pick<Spool, "readStream"> & Partial<Pick<Spool, "source">>;
  log: Logger;
  limits: DestinationLimits;
  transportFor: TransportSelector;
  lifecycle: Lifecycle;
  clock?: Clock;
  /** Waits `ms` (for a busy destination); default a real timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Jitter source for the backoff; default Math.random. */
  random?: () => number;
  /** True while the engine shuts down (busy waits give up). */
  stopping?: () => boolean;
}

/** The outcome of one destination: delivered through a transport, or held by its limits. */
export type DestinationResult =
  | { kind: "done"; outcomes: RecipientOutcome[]; attempt: AttemptRecord; retryAt?: number }
  | { kind: "later"; retryAt: number; reason: string };

/** Runs attempts. */
export interface AttemptRunner {
  /**
   * One attempt for every pending recipient of a message. Works on the stored version
   * unless `fresh` (the record intake handed over a moment ago is exactly what was stored).
   */
  deliverMessage(snapshot: QueueRecord, fresh?: boolean): Promise<void>;
  /**
   * One attempt for one destination (no record bookkeeping; {@link deliverMessage} does that).
   * Delivered recipients are marked in the store; with `marking`, the mark's completion is pushed
   * there instead of awaited.
   */
  deliverDestination(
    record: QueueRecord,
    domain: string,
    rcpts: string[],
    marking?: Promise<void>[],
  ): Promise<DestinationResult>;
  /** Last error reply seen per destination domain. */
  lastReplies(): Map<string, { reply: string; at: number }>;
}

const domainOf = (address: string) => address.slice(address.lastIndexOf("@") + 1).toLowerCase();

/** Creates an attempt runner. */
export function createAttemptRunner(options: AttemptOptions): AttemptRunner {
  const { store, spool, log, limits, lifecycle } = options;
  const clock = options.clock ?? systemClock;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const stopping = options.stopping ?? (() => false);
  const lastReplies = new Map<string, { reply: string; at: number }>();
  const gate = new PriorityGate();

  async function deliverMessage(snapshot: QueueRecord, fresh = false): Promise<void> {
    const record = fresh ? snapshot : await store.get(snapshot.id);
    if (!record || (record.status !== "queued" && record.status !== "deferred")) return;
    const now = clock.now();
    const d = options.config().delivery;
    if (now - record.receivedAt > d.max_queue_lifetime) {
      const pending = pendingRecipients(record).map((r) => r.address);
      expire(record, d.max_queue_lifetime, now);
      await lifecycle.failedWithoutAttempt(record, pending, "expired");
      log.info("{id} expired after {age}s in the queue", {
        id: record.id,
        age: Math.round((now - record.receivedAt) / 1000),
      });
      return await lifecycle.finish(record);
    }
    const marked = new Set(await store.deliveredOf?.(record.id) ?? []);
    const already = pendingRecipients(record).filter((r) => marked.has(r.address)).map((r) => r.address);
    if (already.length > 0) {
      applyOutcomes(record, already.map((address) => ({ address, outcome: "delivered" as const, reply: DEDUP_REPLY })));
      log.info("{id}: {n} recipient(s) already delivered, not sent again", { id: record.id, n: already.length });
      await lifecycle.deduplicated(record, already);
    }
    const groups = new Map<string, string[]>();
    for (const r of pendingRecipients(record)) {
      const domain = domainOf(r.address);
      groups.set(domain, [...(groups.get(domain) ?? []), r.address]);
    }
    const marking: Promise<void>[] = [];
    const results = await Promise.all(
      [...groups].map(([domain, rcpts]) => deliverDestination(record, domain, rcpts, marking)),
    );
    await Promise.all(marking); // marks are on disk before the record says anything
    let next = Infinity;
    let attempted = false;
    for (const result of results) {
      if (result.kind === "later") {
        log.info("{id}: delivery held ({reason}) until {until}", {
          id: record.id,
          reason: result.reason,
          until: new Date(result.retryAt).toISOString(),
        });
        next = Math.min(next, result.retryAt);
        continue;
      }
      attempted = true;
      applyOutcomes(record, result.outcomes, result.attempt, clock.now());
      for (const o of result.outcomes) {
        if (o.outcome !== "delivered") lastReplies.set(domainOf(o.address), { reply: o.reply, at: clock.now() });
      }
      await lifecycle.attempt(record, result.attempt);
      if (result.outcomes.some((o) => o.outcome === "deferred")) {
        const attempts = Math.max(...record.recipients.map((r) => r.attempts));
        const backoff = clock.now() + retryDelay(attempts, d.retry, options.random);
        next = Math.min(next, Math.max(backoff, result.retryAt ?? 0));
      }
    }
    const at = clock.now();
    if (!attempted && next === Infinity) next = at + 1000;
    if (settle(record, next === Infinity ? at : next, at) === "finished") return await lifecycle.finish(record);
    await lifecycle.deferred(record);
    await store.put(record);
  }

  async function deliverDestination(
    record: QueueRecord,
    domain: string,
    rcpts: string[],
    marking?: Promise<void>[],
  ): Promise<DestinationResult> {
    const t0 = clock.now();
    const waitUntil = t0 + MAX_BUSY_WAIT_MS;
    const level = record.priority ?? "normal";
    gate.enter(domain, level);
    try {
      while (true) {
        // Outranked by a waiter of a higher level for this destination: it takes the next slot.
        const verdict = gate.outranked(domain, level)
          ? { ok: false as const, reason: "busy" as const, retryAt: clock.now() + 20 }
          : limits.tryAcquire(domain, clock.now());
        if (verdict.ok) break;
        if (verdict.reason !== "busy" && verdict.reason !== "rate" || verdict.retryAt > waitUntil) {
          return { kind: "later", retryAt: verdict.retryAt, reason: verdict.reason };
        }
        await sleep(Math.max(5, verdict.retryAt - clock.now()));
        if (stopping()) return { kind: "later", retryAt: clock.now(), reason: "stopping" };
      }
    } finally {
      gate.leave(domain, level);
    }
    let connectionFailed = false;
    let lastError = "";
    const span = startSpan("delivery.attempt", {
      "empath.message_id": record.id,
      "empath.domain": domain,
      "empath.recipients": rcpts.length,
      "empath.attempt": Math.max(
        0,
        ...record.recipients.filter((r) => rcpts.includes(r.address)).map((r) => r.attempts),
      ) +
        1,
    });
    try {
      const result = await options.transportFor(domain).deliver({
        id: record.id,
        domain,
        message: outbound(record, rcpts),
      });
      // Written at once (a local store's write(2) survives a crash from here on), synced meanwhile.
      const marked = mark(record.id, result.recipients);
      if (marking) marking.push(marked);
      else await marked;
      connectionFailed = result.connectionFailed ?? false;
      lastError = result.error ?? "";
      const attempt: AttemptRecord = {
        at: t0,
        durationMs: clock.now() - t0,
        server: result.server,
        tls: result.tls,
        recipients: rcpts,
        result: result.recipients.map((o) => ({
          address: o.address,
          code: o.code,
          reply: o.reply,
          outcome: o.outcome,
        })),
        error: result.error,
      };
      for (const o of result.recipients) {
        log.info("{id} to=<{rcpt}> relay={server} status={outcome} reply={reply}", {
          id: record.id,
          rcpt: o.address,
          server: result.server ?? "none",
          outcome: o.outcome,
          reply: o.reply,
        });
      }
      const outcomes = [...new Set(result.recipients.map((o) => o.outcome))].join(",");
      endSpan(span, result.error, { "empath.server": result.server ?? "", "empath.outcome": outcomes });
      return { kind: "done", outcomes: result.recipients, attempt, retryAt: result.retryAt };
    } catch (err) {
      endSpan(span, err);
      throw err;
    } finally {
      limits.release(domain, { connectionFailed, error: lastError }, clock.now());
    }
  }

  /** Remembers the accepted recipients at once (a failure is logged: the record update follows). */
  async function mark(id: string, outcomes: RecipientOutcome[]) {
    const at = clock.now();
    const marks = outcomes.filter((o) => o.outcome === "delivered").map((o) => ({ id, recipient: o.address, at }));
    if (marks.length === 0 || !store.markDelivered) return;
    await store.markDelivered(marks).catch((err) => {
      log.warning("{id}: could not remember the delivered recipients: {error}", { id, error: (err as Error).message });
    });
  }

  function outbound(record: QueueRecord, rcpts: string[]): OutboundMessage {
    const wanted = new Set(rcpts);
    return {
      sender: record.sender,
      recipients: record.recipients.filter((r) => wanted.has(r.address)).map((r) => ({
        address: r.address,
        notify: r.notify,
        orcpt: r.orcpt,
      })),
      ret: record.dsn.ret,
      envid: record.dsn.envid,
      size: record.size,
      smtpUtf8: record.smtpUtf8,
      eightBit: record.bodyType === "8bitmime",
      requireTls: record.metadata[REQUIRETLS_KEY] === true,
      tlsOptional: record.metadata[TLS_OPTIONAL_KEY] === true,
      open: () => spool.readStream(record.id),
      source: spool.source && (() => spool.source!(record.id)),
    };
  }

  return { deliverMessage, deliverDestination, lastReplies: () => new Map(lastReplies) };
}
