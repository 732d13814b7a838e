/**
 * Modules in delivery: the engine's {@link DeliveryEvents} become the module hooks
 * `deliveryAttempt`, `deliverySuccess` and `deliveryFailure`, with a context built
 * from the queue record, so metadata stored at intake is there again, also after a
 * restart. The engine awaits these events before it stores the record, so changes
 * modules make to their metadata are kept while the message stays queued.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { newQueueRecord } from "../queue/submit.ts";
 * import { ModuleHost } from "./host.ts";
 * import { chainDeliveryEvents, moduleDeliveryEvents, moduleDnsListener } from "./delivery_bridge.ts"; // @ts-ignore deno#26900
 *
 * const host = new ModuleHost([], getLogger(["empath"])); // from loadModules(config.modules, …)
 * const finished: string[] = [];
 * const dsnEvents = { finished: (record: { id: string }) => void finished.push(record.id) };
 * const events = chainDeliveryEvents(moduleDeliveryEvents(host), dsnEvents); // for createDeliveryEngine({ …, events })
 * const envelope = { sender: "", recipients: [{ address: "bob@example.com" }], client: { address: "127.0.0.1", listener: "mx" } };
 * await events.finished?.(newQueueRecord({ id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R", size: 20 }, envelope, 0));
 * assert.deepEqual(finished, ["01JD3V6Y8Q3M0K2V9X7B5N4C1R"]);
 * assert.equal(moduleDnsListener(host), undefined); // no module has dnsLookup: createResolver({ onLookup }) pays nothing
 * ```
 * @module
 */
import type { DeliveryEvents } from "../delivery/mod.ts";
import type { QueueRecord } from "../queue/mod.ts";
import type { ContextFor, ModuleHost } from "./host.ts";
import type { Context, DnsLookupInfo } from "./types.ts";

const noHeaders = (hook: string) => () => {
  throw new TypeError(`addHeader is not available in ${hook}`);
};
const noSigningChoice = (hook: string) => () => {
  throw new TypeError(`skipSigning is not available in ${hook}`);
};

/** The context of a delivery hook, backed by the record (metadata changes land in the record). */
export function recordContext(record: QueueRecord): ContextFor {
  return (m, signal, hook): Context => ({
    hook,
    module: m.name,
    signal,
    session: {
      listener: record.client.listener,
      remote: { address: record.client.address, port: record.client.port },
      helo: record.client.helo,
      tls: record.client.tls ? { version: record.client.tls } : undefined,
      user: record.client.user,
    },
    envelope: { sender: record.sender, recipients: record.recipients.map((r) => r.address) },
    messageId: record.id,
    get metadata() {
      const all = record.metadata ??= {};
      const ns = all[m.name];
      if (ns && typeof ns === "object" && !Array.isArray(ns)) return ns as Record<string, unknown>;
      // A key that is not a module namespace (e.g. a DSN's own notes) is never overwritten.
      if (ns !== undefined) return {};
      return (all[m.name] = {}) as Record<string, unknown>;
    },
    addHeader: noHeaders(hook),
    skipSigning: noSigningChoice(hook),
  });
}

/** Delivery events that run the modules' delivery hooks. */
export function moduleDeliveryEvents(host: ModuleHost): DeliveryEvents {
  return {
    async attempt(record, attempt) {
      const ctx = recordContext(record);
      if (host.has("deliveryAttempt")) {
        await host.notify("deliveryAttempt", ctx, {
          at: attempt.at,
          durationMs: attempt.durationMs,
          server: attempt.server,
          tls: attempt.tls,
          result: attempt.result,
        });
      }
      const delivered = attempt.result.filter((r) => r.outcome === "delivered");
      if (delivered.length > 0 && host.has("deliverySuccess")) {
        await host.notify("deliverySuccess", ctx, {
          recipients: delivered.map((r) => r.address),
          server: attempt.server,
          reply: delivered[0]!.reply, // length > 0
        });
      }
      if (!host.has("deliveryFailure")) return;
      for (const outcome of ["failed", "deferred"] as const) {
        const list = attempt.result.filter((r) => r.outcome === outcome);
        if (list.length === 0) continue;
        await host.notify("deliveryFailure", ctx, {
          recipients: list.map((r) => r.address),
          permanent: outcome === "failed",
          reason: list[0]!.reply, // length > 0
          server: attempt.server,
        });
      }
    },
    async failedWithoutAttempt(record, recipients, reason) {
      if (!host.has("deliveryFailure")) return;
      await host.notify("deliveryFailure", recordContext(record), { recipients, permanent: true, reason });
    },
  };
}

/** Runs several handlers for each event, in order; one failing does not stop the next. */
export function chainDeliveryEvents(...handlers: (DeliveryEvents | undefined)[]): DeliveryEvents {
  const list = handlers.filter((h): h is DeliveryEvents => !!h);
  const run = async <K extends keyof DeliveryEvents>(key: K, args: Parameters<NonNullable<DeliveryEvents[K]>>) => {
    let first: unknown;
    for (const h of list) {
      const fn = h[key] as ((...a: unknown[]) => unknown) | undefined;
      if (!fn) continue;
      try {
        await fn.apply(h, args);
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  };
  return {
    attempt: (...args) => run("attempt", args),
    finished: (...args) => run("finished", args),
    deferred: (...args) => run("deferred", args),
    failedWithoutAttempt: (...args) => run("failedWithoutAttempt", args),
    deduplicated: (...args) => run("deduplicated", args),
  };
}

/** The resolver's onLookup callback for modules' `dnsLookup` (runs alongside the lookup). */
export function moduleDnsListener(host: ModuleHost): ((info: DnsLookupInfo) => void) | undefined {
  if (!host.has("dnsLookup")) return undefined;
  const ctx: ContextFor = (m, signal, hook) => ({
    hook,
    module: m.name,
    signal,
    envelope: { recipients: [] },
    metadata: {},
    addHeader: noHeaders(hook),
    skipSigning: noSigningChoice(hook),
  });
  return (info) => void host.notify("dnsLookup", ctx, { ...info });
}
