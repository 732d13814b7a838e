/**
 * Operator state that survives a restart: the global freeze, destination suspensions,
 * runtime MX overrides and rate limits, and the last error per destination shown by
 * `queue summary`. Each change is written to the queue store's state entries
 * ({@link QueueStore.putState}) before it is acknowledged; suspensions and last errors
 * carry an expiry. {@link DurableOperatorState.restore} loads them at start.
 *
 * Keys: `freeze`, `suspend/<domain>`, `mx/<domain>`, `rate/<domain>`, `last-error/<domain>`.
 *
 * Lifting a hold releases what it held at once: resuming a suspension, or changing a rate
 * limit, makes the destination's mail that waited for the hold due now.
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { QueueStore, StateValue } from "../queue/mod.ts";
import type { Clock } from "./clock.ts";
import type { DestinationLimits } from "./limits.ts";
import type { Operator } from "./operator.ts";
import type { NextHop, Overrides } from "./overrides.ts";
import type { Scheduler } from "./scheduler.ts";

/** How long a destination's last error is remembered. */
export const LAST_ERROR_TTL_MS = 7 * 24 * 3600_000;

/** What the durable state wraps. */
export interface OperatorStateDeps {
  store: Pick<QueueStore, "getState" | "putState" | "listState" | "deleteState">;
  log: Logger;
  clock: Clock;
  limits: DestinationLimits;
  overrides: Overrides;
  scheduler: Pick<Scheduler, "setFrozen">;
  operator: Pick<Operator, "suspend" | "releaseHeld">;
  /** The attempt runner's last error reply per destination (this run only). */
  lastReplies: () => Map<string, { reply: string; at: number }>;
}

/** Operator changes, written through to the store. */
export interface DurableOperatorState {
  /** Loads the stored state into the limits, overrides and scheduler. */
  restore(): Promise<void>;
  setFrozen(frozen: boolean): Promise<void>;
  /** Holds a domain until `until`; 0 (or a past time) lifts it and releases the mail it held. */
  suspend(domain: string, until: number): Promise<void>;
  /** Sets (0 removes) a runtime rate limit; mail held by the old rate becomes due now. */
  setRate(domain: string, rate: number): Promise<void>;
  setOverride(domain: string, target: NextHop): Promise<void>;
  removeOverride(domain: string): Promise<boolean>;
  /** Last error per destination: this run's, over the stored ones from earlier runs. */
  lastReplies(): Map<string, { reply: string; at: number }>;
  /** Writes last errors that changed since the previous call. */
  flushReplies(): Promise<void>;
}

const isHop = (v: StateValue): v is { host: string; port: number } =>
  typeof v === "object" && v !== null && !Array.isArray(v) && typeof v.host === "string" &&
  typeof v.port === "number";

/** Creates the write-through operator state. */
export function createOperatorState(deps: OperatorStateDeps): DurableOperatorState {
  const { store, limits, clock, log } = deps;
  const stored = new Map<string, { reply: string; at: number }>();

  return {
    async restore() {
      if (await store.getState("freeze") === true) {
        deps.scheduler.setFrozen(true);
        log.warning(
          "delivery is frozen (a global freeze from before the restart); `empathctl queue unfreeze` lifts it",
        );
      }
      for (const e of await store.listState("suspend/")) {
        if (typeof e.value === "number") limits.suspend(e.key.slice("suspend/".length), e.value);
      }
      for (const e of await store.listState("mx/")) {
        if (isHop(e.value)) deps.overrides.set(e.key.slice("mx/".length), { host: e.value.host, port: e.value.port });
      }
      for (const e of await store.listState("rate/")) {
        if (typeof e.value === "number") limits.setRate(e.key.slice("rate/".length), e.value);
      }
      for (const e of await store.listState("last-error/")) {
        const v = e.value;
        if (typeof v === "object" && v !== null && !Array.isArray(v) && typeof v.reply === "string") {
          stored.set(e.key.slice("last-error/".length), { reply: v.reply, at: typeof v.at === "number" ? v.at : 0 });
        }
      }
    },
    async setFrozen(frozen) {
      if (frozen) await store.putState("freeze", true);
      else await store.deleteState("freeze");
      deps.scheduler.setFrozen(frozen);
    },
    async suspend(domain, until) {
      const now = clock.now();
      const heldUntil = limits.state(domain, now).suspendedUntil;
      if (until > now) await store.putState(`suspend/${domain}`, until, until);
      else await store.deleteState(`suspend/${domain}`);
      deps.operator.suspend(domain, until);
      if (until <= now && heldUntil !== undefined) await deps.operator.releaseHeld(domain, heldUntil);
    },
    async setRate(domain, rate) {
      const old = limits.rateFor(domain);
      if (rate > 0) await store.putState(`rate/${domain}`, rate);
      else await store.deleteState(`rate/${domain}`);
      limits.setRate(domain, rate);
      // A rate-held message waits at most 1/rate seconds for its token.
      if (old !== undefined) await deps.operator.releaseHeld(domain, clock.now() + Math.ceil(1000 / old) + 1000);
    },
    async setOverride(domain, target) {
      await store.putState(`mx/${domain.toLowerCase()}`, { host: target.host, port: target.port });
      deps.overrides.set(domain, target);
    },
    async removeOverride(domain) {
      await store.deleteState(`mx/${domain.toLowerCase()}`);
      return deps.overrides.remove(domain);
    },
    lastReplies() {
      return new Map([...stored, ...deps.lastReplies()]);
    },
    async flushReplies() {
      for (const [domain, r] of deps.lastReplies()) {
        if (stored.get(domain)?.at === r.at) continue;
        await store.putState(`last-error/${domain}`, { reply: r.reply, at: r.at }, r.at + LAST_ERROR_TTL_MS);
        stored.set(domain, r);
      }
    },
  };
}
