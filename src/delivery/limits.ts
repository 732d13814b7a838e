/**
 * Per-destination limits: concurrent connections (semaphore), messages per
 * second (token bucket), a circuit breaker that opens after N consecutive
 * connection failures and lets one probe through after a cool-down, and an
 * operator suspension that lifts itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DestinationLimits } from "./limits.ts"; // @ts-ignore deno#26900
 *
 * const limits = new DestinationLimits(() => ({ maxConnections: 1, failures: 5, cooldownMs: 60_000 }));
 * const now = Date.now();
 * assert.deepEqual(limits.tryAcquire("example.com", now), { ok: true });
 * assert.equal(limits.tryAcquire("example.com", now).ok, false); // busy: one connection at most
 * limits.release("example.com", { connectionFailed: false }, now);
 * assert.equal(limits.state("example.com", now).active, 0);
 * ```
 * @module
 */
import { type Clock, systemClock } from "./clock.ts";

/** Limits for one destination. */
export interface DestinationPolicy {
  maxConnections: number;
  /** Messages per second; undefined = unlimited. */
  rate?: number;
  failures: number;
  cooldownMs: number;
}

/** Why a destination cannot be used right now, and when to look again. */
export type AcquireVerdict =
  | { ok: true }
  | { ok: false; reason: "busy" | "rate" | "circuit-open" | "suspended"; retryAt: number };

/**
 * Limits shared by several nodes (a cluster backend): consulted after the local checks.
 * Synchronous on purpose — an implementation answers from what it fetched ahead and
 * says "rate"/"busy" with a short retryAt while it asks the cluster.
 */
export interface SharedGate {
  /** This node's share of a destination's connection limit. */
  connectionShare(domain: string, maxConnections: number): number;
  /** Takes one cluster-wide rate token for `domain` (rate in messages/second). */
  takeToken(domain: string, rate: number, now: number): AcquireVerdict;
}

/** Observable state of one destination. */
export interface DestinationState {
  domain: string;
  active: number;
  tokens: number;
  consecutiveFailures: number;
  circuit: "closed" | "open" | "half-open";
  openUntil?: number;
  suspendedUntil?: number;
  lastError?: string;
}

interface Entry {
  active: number;
  tokens: number;
  refilledAt: number;
  failures: number;
  openUntil: number;
  probing: boolean;
  suspendedUntil: number;
  lastError?: string;
}

/** Tracks all destinations; cheap, in memory. */
export class DestinationLimits {
  readonly #entries = new Map<string, Entry>();
  readonly #overrides = new Map<string, number>();
  readonly #clock: Clock;
  /** Cluster-wide limits, set by the daemon on a shared backend (rates and connections then hold for the cluster). */
  shared?: SharedGate;
  /** `clock` supplies the default "now" of the methods that take an optional time. */
  constructor(readonly policyFor: (domain: string) => DestinationPolicy, clock: Clock = systemClock) {
    this.#clock = clock;
  }

  #entry(domain: string, now: number): Entry {
    let e = this.#entries.get(domain);
    if (!e) {
      e = { active: 0, tokens: -1, refilledAt: now, failures: 0, openUntil: 0, probing: false, suspendedUntil: 0 };
      this.#entries.set(domain, e);
    }
    return e;
  }

  #rate(domain: string): number | undefined {
    return this.#overrides.get(domain) ?? this.policyFor(domain).rate;
  }

  /** The effective rate (messages/second) for a domain: a runtime override, else the policy's; undefined = unlimited. */
  rateFor(domain: string): number | undefined {
    return this.#rate(domain);
  }

  /** Runtime rate overrides set by {@link setRate}. */
  rateOverrides(): Map<string, number> {
    return new Map(this.#overrides);
  }

  /** Sets a runtime rate limit (messages/second) for a domain; 0 removes the override. */
  setRate(domain: string, rate: number) {
    if (rate > 0) this.#overrides.set(domain, rate);
    else this.#overrides.delete(domain);
  }

  /** Holds all delivery to a domain until `until` (epoch ms); 0 lifts it. */
  suspend(domain: string, until: number) {
    this.#entry(domain, this.#clock.now()).suspendedUntil = until;
  }

  suspensions(now: number = this.#clock.now()): { domain: string; until: number }[] {
    return [...this.#entries].filter(([, e]) => e.suspendedUntil > now).map(([domain, e]) => ({
      domain,
      until: e.suspendedUntil,
    }));
  }

  /** Takes a connection slot and a rate token if the destination allows it now. */
  tryAcquire(domain: string, now: number): AcquireVerdict {
    const policy = this.policyFor(domain);
    const e = this.#entry(domain, now);
    if (e.suspendedUntil > now) return { ok: false, reason: "suspended", retryAt: e.suspendedUntil };
    if (e.openUntil > now) return { ok: false, reason: "circuit-open", retryAt: e.openUntil };
    if (e.failures >= policy.failures && e.probing) {
      return { ok: false, reason: "circuit-open", retryAt: now + Math.min(policy.cooldownMs, 5000) };
    }
    const maxConnections = this.shared?.connectionShare(domain, policy.maxConnections) ?? policy.maxConnections;
    if (e.active >= maxConnections) return { ok: false, reason: "busy", retryAt: now + 50 };
    const rate = this.#rate(domain);
    if (rate !== undefined && this.shared) {
      const verdict = this.shared.takeToken(domain, rate, now);
      if (!verdict.ok) return verdict;
    } else if (rate !== undefined) {
      const burst = Math.max(1, rate);
      // A destination seen for the first time starts with a full bucket (tokens = -1).
      e.tokens = e.tokens < 0 ? burst : Math.min(burst, e.tokens + ((now - e.refilledAt) / 1000) * rate);
      e.refilledAt = now;
      if (e.tokens < 1) return { ok: false, reason: "rate", retryAt: now + Math.ceil(((1 - e.tokens) / rate) * 1000) };
      e.tokens -= 1;
    }
    if (e.failures >= policy.failures) e.probing = true; // half-open: this attempt is the probe
    e.active++;
    return { ok: true };
  }

  /** Returns the slot; a connection failure counts toward opening the breaker. */
  release(domain: string, outcome: { connectionFailed: boolean; error?: string }, now: number = this.#clock.now()) {
    const policy = this.policyFor(domain);
    const e = this.#entry(domain, now);
    e.active = Math.max(0, e.active - 1);
    if (outcome.connectionFailed) {
      e.failures++;
      e.lastError = outcome.error;
      if (e.failures >= policy.failures) e.openUntil = now + policy.cooldownMs;
    } else {
      e.failures = 0;
      e.openUntil = 0;
    }
    e.probing = false;
  }

  state(domain: string, now: number = this.#clock.now()): DestinationState {
    const e = this.#entry(domain, now);
    const policy = this.policyFor(domain);
    const circuit = e.openUntil > now ? "open" : e.failures >= policy.failures ? "half-open" : "closed";
    return {
      domain,
      active: e.active,
      tokens: e.tokens,
      consecutiveFailures: e.failures,
      circuit,
      openUntil: e.openUntil > now ? e.openUntil : undefined,
      suspendedUntil: e.suspendedUntil > now ? e.suspendedUntil : undefined,
      lastError: e.lastError,
    };
  }

  all(now: number = this.#clock.now()): DestinationState[] {
    return [...this.#entries.keys()].map((d) => this.state(d, now));
  }
}
