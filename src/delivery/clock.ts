/**
 * Time for the delivery engine, injectable so tests advance a fake clock instead
 * of waiting: backoff, expiry, the circuit breaker and scheduling read it.
 *
 * @example
 * ```ts
 * let t = 0;
 * const clock: Clock = { now: () => t };
 * t += 60_000; // a minute later, without sleeping
 * ```
 * @module
 */

/** A source of the current time (epoch ms). */
export interface Clock {
  now(): number;
}

/** The real clock (`Date.now`). */
export const systemClock: Clock = { now: Date.now };
