/**
 * Time for the delivery engine, injectable so tests advance a fake clock instead
 * of waiting: backoff, expiry, the circuit breaker and scheduling read it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Clock } from "./clock.ts"; // @ts-ignore deno#26900
 *
 * let t = 0;
 * const clock: Clock = { now: () => t };
 * t += 60_000; // a minute later, without sleeping
 * assert.equal(clock.now(), 60_000);
 * ```
 * @module
 */

/** A source of the current time (epoch ms). */
export interface Clock {
  now(): number;
}

/** The real clock (`Date.now`). */
export const systemClock: Clock = { now: Date.now };
