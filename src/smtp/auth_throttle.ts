/**
 * Slows down and locks out SMTP AUTH password guessing (`[smtp.auth]`):
 *
 * - each failed AUTH in a session is answered after a delay that doubles with every
 *   further failure (`failure_delay`, capped at `max_failure_delay`); a successful
 *   AUTH is never delayed;
 * - the `max_failures`-th failure in a session ends it (535, then 421 4.7.0);
 * - failures are also counted per client address across sessions and listeners
 *   (IPv6 clients per /64, since one host usually owns a whole /64): after
 *   `ip_max_failures` within `ip_window`, AUTH from that address is refused at once
 *   with 454 4.7.0 — even with the right password — until old failures age out.
 *
 * The per-address table lives in memory and is bounded ({@link MAX_TRACKED_CLIENTS});
 * when it is full the address whose last failure is oldest is forgotten first. The
 * daemon keeps a copy in the queue store (`onFailure`, {@link AuthThrottle.restore}) so a
 * restart does not lift a lockout.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuthThrottle } from "./auth_throttle.ts"; // @ts-ignore deno#26900
 *
 * const settings = { failure_delay: 1000, max_failure_delay: 5000, max_failures: 3, ip_max_failures: 10, ip_window: 600_000 };
 * const throttle = new AuthThrottle();
 * assert.equal(throttle.admit("192.0.2.7", settings), null); // not locked out
 * const { delayMs, closeSession } = throttle.fail("192.0.2.7", 1, settings);
 * assert.equal(delayMs, 1000); // hold the 535 this long
 * assert.equal(closeSession, false);
 * ```
 * @module
 */
import { parseIp } from "../util/cidr.ts";
import { reject, type SmtpError } from "./errors.ts";

/** The `[smtp.auth]` settings (milliseconds for durations). */
export interface AuthThrottleSettings {
  failure_delay: number;
  max_failure_delay: number;
  max_failures: number;
  /** 0 turns the per-address limit off. */
  ip_max_failures: number;
  ip_window: number;
}

/** What to do with one failed AUTH. */
export interface FailureVerdict {
  /** How long to hold the 535 reply. */
  delayMs: number;
  /** True when this was the session's last allowed failure: follow the 535 with 421 and disconnect. */
  closeSession: boolean;
}

/** Client addresses whose failures are remembered at most. */
export const MAX_TRACKED_CLIENTS = 10_000;

/**
 * The delay before the 535 of the `n`-th failed AUTH in a session (1-based):
 * failure_delay × 2^(n−1), at most max_failure_delay.
 */
export function failureDelay(n: number, settings: AuthThrottleSettings): number {
  if (settings.failure_delay <= 0) return 0;
  const grown = settings.failure_delay * 2 ** Math.min(Math.max(n - 1, 0), 30);
  return Math.min(grown, settings.max_failure_delay);
}

/**
 * The key failures are counted under: an IPv4 address as is (IPv4-mapped IPv6
 * folded to IPv4), an IPv6 address by its /64 prefix, anything else verbatim.
 */
export function clientKey(address: string): string {
  const bytes = parseIp(address);
  if (!bytes) return address;
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16)); // 16 bytes
  return `${groups.join(":")}::/64`;
}

/** Per-client AUTH failure accounting, shared by every listener of a daemon. */
export class AuthThrottle {
  /** Client key → times of its most recent failures, oldest first; Map order = least recently failed first. */
  readonly #failures = new Map<string, number[]>();
  /** Client key → password checks under way (counted as failures by admit() until they end). */
  readonly #inFlight = new Map<string, number>();
  readonly #maxClients: number;
  readonly #now: () => number;
  readonly #onFailure?: (key: string, times: readonly number[], settings: AuthThrottleSettings) => void;

  /** `onFailure` sees a client's recent failure times after each recorded failure (to store them). */
  constructor(
    options: {
      maxClients?: number;
      now?: () => number;
      onFailure?: (key: string, times: readonly number[], settings: AuthThrottleSettings) => void;
    } = {},
  ) {
    this.#maxClients = options.maxClients ?? MAX_TRACKED_CLIENTS;
    this.#now = options.now ?? Date.now;
    this.#onFailure = options.onFailure;
  }

  /** Loads a client's failure times (by {@link clientKey}) kept from before a restart. */
  restore(key: string, times: readonly number[]): void {
    if (times.length === 0 || this.#failures.size >= this.#maxClients) return;
    this.#failures.set(key, [...times].sort((a, b) => a - b));
  }

  /** Client addresses (or IPv6 /64s) currently remembered. */
  get size(): number {
    return this.#failures.size;
  }

  /** Failures of this client within the window. */
  recentFailures(address: string, settings: AuthThrottleSettings): number {
    return this.#recent(clientKey(address), settings)?.length ?? 0;
  }

  /** Null when the client may try AUTH; otherwise the 454 4.7.0 refusal to send at once. */
  admit(address: string, settings: AuthThrottleSettings): SmtpError | null {
    if (settings.ip_max_failures <= 0) return null;
    const key = clientKey(address);
    const counted = (this.#recent(key, settings)?.length ?? 0) + (this.#inFlight.get(key) ?? 0);
    if (counted < settings.ip_max_failures) return null;
    return reject(
      454,
      "4.7.0",
      `Too many failed authentication attempts from ${address}, try again later`,
      "AUTH_LOCKED_OUT",
    );
  }

  /**
   * Marks a password check as under way for this client, before it is hashed: until the returned
   * function is called it counts as a failure in {@link admit}, so a burst of parallel attempts from
   * one address cannot all pass the lockout check before the first of them has failed.
   */
  begin(address: string): () => void {
    const key = clientKey(address);
    this.#inFlight.set(key, (this.#inFlight.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.#inFlight.get(key) ?? 1) - 1;
      if (left > 0) this.#inFlight.set(key, left);
      else this.#inFlight.delete(key);
    };
  }

  /**
   * Records a failed AUTH; `sessionFailures` counts this one (1 for the session's first).
   * Returns the delay for the 535 and whether the session has to end.
   */
  fail(address: string, sessionFailures: number, settings: AuthThrottleSettings): FailureVerdict {
    if (settings.ip_max_failures > 0) {
      const key = clientKey(address);
      const times = this.#recent(key, settings) ?? [];
      times.push(this.#now());
      // Only the most recent ip_max_failures matter for the limit.
      if (times.length > settings.ip_max_failures) times.splice(0, times.length - settings.ip_max_failures);
      this.#failures.delete(key); // re-insert: most recently failed goes last
      while (this.#failures.size >= this.#maxClients) {
        this.#failures.delete(this.#failures.keys().next().value!);
      }
      this.#failures.set(key, times);
      this.#onFailure?.(key, times, settings);
    }
    return {
      delayMs: failureDelay(sessionFailures, settings),
      closeSession: sessionFailures >= settings.max_failures,
    };
  }

  /** The client's failures still inside the window (expired ones are dropped). */
  #recent(key: string, settings: AuthThrottleSettings): number[] | undefined {
    const times = this.#failures.get(key);
    if (!times) return undefined;
    const since = this.#now() - settings.ip_window;
    let expired = 0;
    while (expired < times.length && times[expired]! <= since) expired++;
    if (expired > 0) times.splice(0, expired);
    if (times.length === 0) {
      this.#failures.delete(key);
      return undefined;
    }
    return times;
  }
}
