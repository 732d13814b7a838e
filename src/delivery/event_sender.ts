/**
 * Pushes the outbox to webhook subscribers: per subscription, the oldest events go
 * out in batches (`{"events": [...]}` as one POST, signed like the http transport:
 * `webhook-id`, `webhook-timestamp`, `webhook-signature`), and are removed from the
 * outbox only after a 2xx. Anything else (an error status, a timeout, a refused
 * connection) keeps them and retries the subscription with exponential backoff
 * (1 s doubling up to `max_backoff`, `Retry-After` honoured). At-least-once: a crash
 * after the POST and before the removal sends the batch again (same `webhook-id`
 * and event ids, so receivers can drop repeats).
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { parseConfig } from "../config/mod.ts";
 * import { createEventSender } from "./event_sender.ts"; // @ts-ignore deno#26900
 *
 * const config = parseConfig("", "config.toml"); // no [[events.webhooks]]: nothing to send
 * const store = { outboxPeek: () => Promise.resolve([]), outboxRemove: () => Promise.resolve() };
 * const sender = createEventSender({ config: () => config, store, log: getLogger(["empath"]) });
 * sender.start();
 * await sender.stop();
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config, EventWebhookConfig } from "../config/mod.ts";
import type { QueueStore } from "../queue/mod.ts";
import { parseRetryAfter, signWebhook } from "./http_transport.ts";

/** What the sender needs. */
export interface EventSenderOptions {
  config: () => Pick<Config, "events">;
  store: Pick<QueueStore, "outboxPeek" | "outboxRemove">;
  log: Logger;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** How often idle subscriptions look at the outbox (default 1 s; `wake` is immediate). */
  pollMs?: number;
}

/** The running sender. */
export interface EventSender {
  start(): void;
  /** New events are in the outbox: send without waiting for the next poll. */
  wake(): void;
  /** Stops after the requests in flight (their events stay in the outbox unless answered 2xx). */
  stop(): Promise<void>;
  /** Per subscription: consecutive failures and the last error (for logs and tests). */
  state(): Map<string, { failures: number; lastError?: string }>;
}

const enc = new TextEncoder();

/** Creates the sender (call start()). */
export function createEventSender(options: EventSenderOptions): EventSender {
  const { store, log } = options;
  const doFetch = options.fetch ?? fetch;
  const pollMs = options.pollMs ?? 1000;
  const states = new Map<string, { failures: number; lastError?: string; until: number }>();
  let stopped = true;
  let loop: Promise<void> | undefined;
  let nudge = Promise.withResolvers<void>();

  /** Sends one batch for `sub`; true when something was sent (look again at once). */
  async function sendBatch(sub: EventWebhookConfig): Promise<boolean> {
    const target = sub.name ?? sub.url;
    const state = states.get(target) ?? { failures: 0, until: 0 };
    states.set(target, state);
    if (Date.now() < state.until) return false;
    const batch = await store.outboxPeek(target, sub.batch_size);
    if (batch.length === 0) return false;
    const body = enc.encode(`{"events":[${batch.map((e) => e.body).join(",")}]}`);
    const id = `evt_${batch[0]!.id}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
    };
    if (sub.secret) headers["webhook-signature"] = await signWebhook(sub.secret, id, timestamp, body);
    let error: string;
    let retryAt: number | undefined;
    try {
      const res = await doFetch(sub.url, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(sub.timeout),
      });
      await res.body?.cancel();
      if (res.ok) {
        await store.outboxRemove(batch.map((e) => e.id));
        if (state.failures > 0) log.info("event webhook {target} is answering again", { target });
        state.failures = 0;
        state.lastError = undefined;
        return true;
      }
      error = `HTTP ${res.status}`;
      retryAt = parseRetryAfter(res.headers.get("retry-after"), Date.now());
    } catch (err) {
      error = (err as Error).message;
    }
    state.failures++;
    state.lastError = error;
    const backoff = Math.min(sub.max_backoff, 1000 * 2 ** Math.min(20, state.failures - 1));
    state.until = Math.max(Date.now() + backoff, retryAt ?? 0);
    log.warning("event webhook {target}: {error}; {n} event(s) kept, retry in {s}s", {
      target,
      error,
      n: batch.length,
      s: Math.round((state.until - Date.now()) / 1000),
    });
    return false;
  }

  async function run() {
    while (!stopped) {
      let busy = false;
      for (const sub of options.config().events.webhooks) {
        if (stopped) break;
        try {
          busy = (await sendBatch(sub)) || busy;
        } catch (err) {
          log.error("event webhook {target} failed: {error}", {
            target: sub.name ?? sub.url,
            error: (err as Error).message,
          });
        }
      }
      if (busy || stopped) continue;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([nudge.promise, new Promise<void>((r) => timer = setTimeout(r, pollMs))]);
      clearTimeout(timer);
      nudge = Promise.withResolvers<void>();
    }
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      loop = run();
    },
    wake: () => nudge.resolve(),
    async stop() {
      stopped = true;
      nudge.resolve();
      await loop;
    },
    state: () => new Map([...states].map(([k, v]) => [k, { failures: v.failures, lastError: v.lastError }])),
  };
}
