/**
 * Idle connection pool per destination ("host:port|tls|verify"): sessions are
 * reused for several messages (RSET between), closed with QUIT after an idle
 * timeout or a number of messages, and capped per destination (FIFO waiters).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createConnectionPool } from "./connection_pool.ts"; // @ts-ignore deno#26900
 *
 * const pool = createConnectionPool({ maxPerDestination: 10, idleTimeoutMs: 30_000, maxMessagesPerConnection: 100 });
 * // const session = await pool.acquire(target); … pool.release(session, reusable)
 * assert.deepEqual(pool.stats(), []); // no destination opened yet
 * await pool.closeAll();
 * ```
 * @module
 */
import { type DeliveryResult, type DeliveryTarget, type OutboundMessage, SmtpSession } from "./smtp_client.ts";

/** What a pool hands out: a session that sends one message at a time. */
export interface PooledSession {
  send(message: OutboundMessage): Promise<DeliveryResult>;
}

/** Pool settings. */
export interface PoolOptions {
  maxPerDestination: number;
  idleTimeoutMs: number;
  maxMessagesPerConnection: number;
  open?: (target: DeliveryTarget) => Promise<SmtpSession>;
}

/** The pool. */
export interface ConnectionPool {
  acquire(target: DeliveryTarget): Promise<PooledSession>;
  /** Returns a session; `reusable` false closes it. */
  release(session: PooledSession, reusable: boolean): void;
  closeAll(): Promise<void>;
  stats(): { destination: string; idle: number; active: number }[];
}

interface Destination {
  idle: { session: SmtpSession; timer: ReturnType<typeof setTimeout> }[];
  active: number;
  waiters: (() => void)[];
}

const keyOf = (t: DeliveryTarget) => `${t.host}:${t.port}|${t.tls}|${t.verifyCertificates}|${t.policyKey ?? ""}`;

/** Creates a pool. */
export function createConnectionPool(options: PoolOptions): ConnectionPool {
  const open = options.open ?? SmtpSession.open;
  const destinations = new Map<string, Destination>();
  const keys = new WeakMap<SmtpSession, string>();
  let closed = false;

  const dest = (key: string) => {
    let d = destinations.get(key);
    if (!d) destinations.set(key, d = { idle: [], active: 0, waiters: [] });
    return d;
  };

  const wakeOne = (d: Destination) => d.waiters.shift()?.();

  return {
    async acquire(target) {
      const key = keyOf(target);
      const d = dest(key);
      while (!closed) {
        const idle = d.idle.pop();
        if (idle) {
          clearTimeout(idle.timer);
          if (!idle.session.isUsable) {
            void idle.session.close();
            continue;
          }
          try {
            // After a completed transaction the session is ready for MAIL FROM (RFC 5321 4.1.4);
            // RSET only when the last transaction did not end cleanly.
            if (!idle.session.clean) await idle.session.reset();
            d.active++;
            return idle.session;
          } catch {
            void idle.session.close();
            continue;
          }
        }
        if (d.active + d.idle.length < options.maxPerDestination) {
          d.active++;
          try {
            const session = await open(target);
            keys.set(session, key);
            return session;
          } catch (err) {
            d.active--;
            wakeOne(d);
            throw err;
          }
        }
        await new Promise<void>((resolve) => d.waiters.push(resolve));
      }
      throw new Error("connection pool is closed");
    },
    release(pooled, reusable) {
      const session = pooled as SmtpSession; // this pool hands out only its own sessions
      const key = keys.get(session) ?? keyOf(session.target);
      const d = dest(key);
      d.active = Math.max(0, d.active - 1);
      if (closed || !reusable || !session.isUsable || session.messagesSent >= options.maxMessagesPerConnection) {
        void session.close();
      } else {
        const entry = {
          session,
          timer: setTimeout(() => {
            d.idle.splice(d.idle.indexOf(entry), 1);
            void session.close();
          }, options.idleTimeoutMs),
        };
        d.idle.push(entry);
      }
      wakeOne(d);
    },
    async closeAll() {
      closed = true;
      const closing: Promise<void>[] = [];
      for (const d of destinations.values()) {
        for (const { session, timer } of d.idle.splice(0)) {
          clearTimeout(timer);
          closing.push(session.close());
        }
        d.waiters.splice(0).forEach((w) => w());
      }
      await Promise.all(closing);
    },
    stats() {
      return [...destinations].map(([destination, d]) => ({ destination, idle: d.idle.length, active: d.active }));
    },
  };
}
