/**
 * Retry schedule: exponential backoff with jitter, Postfix-like defaults
 * (5 minutes doubling up to 4000 s).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { retryDelay } from "./backoff.ts"; // @ts-ignore deno#26900
 *
 * const retry = { base_delay: 300_000, max_delay: 4_000_000, factor: 2, jitter: 0 };
 * assert.equal(retryDelay(1, retry), 300_000);
 * assert.equal(retryDelay(3, retry), 1_200_000);
 * assert.equal(retryDelay(10, retry), 4_000_000); // capped at max_delay
 * ```
 * @module
 */

/** The [delivery.retry] settings. */
export interface RetrySettings {
  base_delay: number;
  max_delay: number;
  factor: number;
  jitter: number;
}

/** Delay before the next attempt after `attempts` failed attempts (1-based). */
export function retryDelay(attempts: number, retry: RetrySettings, random: () => number = Math.random): number {
  const exp = retry.base_delay * Math.pow(retry.factor, Math.max(0, attempts - 1));
  const capped = Math.min(retry.max_delay, exp);
  const spread = capped * retry.jitter * (random() * 2 - 1);
  return Math.max(1000, Math.round(capped + spread));
}
