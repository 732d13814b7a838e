/**
 * The daemon's delivery-event webhooks and queue-priority metrics: the recorder
 * (engine and intake events into the outbox), the sender (outbox to subscribers),
 * and the gauges for outbox depth, the oldest waiting event and messages per priority.
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import { createEventRecorder, createEventSender, type DeliveryEvents } from "../delivery/mod.ts";
import type { Metrics } from "../observability/mod.ts";
import type { QueueRecord, QueueStore } from "../queue/mod.ts";

/** Event webhooks as the daemon runs them. */
export interface DaemonEvents {
  /** Chained into the engine's events. */
  events: DeliveryEvents;
  /** For the submitter's "queued" listener (received mail, DSNs sent). */
  queued(record: QueueRecord): void;
  start(): void;
  stop(): Promise<void>;
}

/** Creates the recorder and sender over the queue store's outbox, and registers their gauges. */
export function createDaemonEvents(
  options: { config: () => Config; store: QueueStore; log: Logger; metrics: Metrics },
): DaemonEvents {
  const { store, log, metrics } = options;
  const recorder = createEventRecorder({ config: options.config, store });
  const sender = createEventSender({ config: options.config, store, log });
  const wake = <A extends unknown[]>(fn?: (...a: A) => void | Promise<void>) => async (...a: A) => {
    await fn?.(...a);
    sender.wake();
  };
  metrics.gauge("empath_event_outbox_events", "Delivery events waiting to be sent to webhooks", [], async (set) => {
    set({}, (await store.outboxStats()).depth);
  });
  metrics.gauge(
    "empath_event_outbox_oldest_age_seconds",
    "Age of the oldest unsent delivery event",
    [],
    async (set) => {
      const { oldestAt } = await store.outboxStats();
      set({}, oldestAt === null ? 0 : (Date.now() - oldestAt) / 1000);
    },
  );
  metrics.gauge("empath_queue_messages_by_priority", "Messages in the queue by priority", ["priority"], async (set) => {
    for (const [priority, n] of Object.entries((await store.stats()).priorities)) set({ priority }, n);
  });
  return {
    events: {
      attempt: wake(recorder.events.attempt),
      deduplicated: wake(recorder.events.deduplicated),
      failedWithoutAttempt: wake(recorder.events.failedWithoutAttempt),
    },
    queued: (record) => {
      recorder.queued(record).then(() => sender.wake(), (err) => {
        log.error("recording the queued event of {id} failed: {error}", { id: record.id, error: err.message });
      });
    },
    start: () => sender.start(),
    stop: () => sender.stop(),
  };
}
