/**
 * The sessions of one listener: open connections, connections per client address,
 * messages being received, and the graceful shutdown over them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createSessionRegistry } from "./session_registry.ts"; // @ts-ignore deno#26900
 *
 * const registry = createSessionRegistry("mx");
 * // The listener calls add(conn) in connect(), opened(session) in onConnect, track(work) per message.
 * assert.deepEqual(registry.sessions(), []);
 * await registry.shutdown(30_000); // 421 to idle sessions, DATA may finish
 * ```
 * @module
 */
import type { SMTPServerSession } from "smtp-server";
import { userOf } from "./session_facts.ts";
import { type Connection, inDataMode, socketOf } from "./smtp_server_private.ts";

/** An active session, as shown by `empathctl smtp connections`. */
export interface SessionInfo {
  id: string;
  listener: string;
  peer: string;
  state: "connected" | "ehlo" | "mail" | "rcpt" | "data";
  tls: boolean;
  /** The name the client gave in HELO/EHLO. */
  helo?: string;
  /** TLS protocol version and cipher, once TLS is up. */
  tlsVersion?: string;
  tlsCipher?: string;
  user?: string;
  startedAt: number;
}

/** Book-keeping of one listener's sessions. */
export interface SessionRegistry {
  /** A new connection (before its greeting). */
  add(conn: Connection): void;
  get(id: string): Connection | undefined;
  /** onConnect: counts the session against its client address; returns that address's open sessions. */
  opened(session: SMTPServerSession): number;
  /** onClose: forgets the session; true when it had been counted by {@link opened}. */
  closed(session: SMTPServerSession): boolean;
  /** Keeps a message being received in view until it settles (shutdown waits for it). */
  track(work: Promise<unknown>): void;
  sessions(): SessionInfo[];
  /** Sessions between transactions get 421 now; those in DATA get up to graceMs; then all are cut. */
  shutdown(graceMs: number): Promise<void>;
}

/** An empty registry for the listener `listener`. */
export function createSessionRegistry(listener: string): SessionRegistry {
  const conns = new Map<string, { conn: Connection; startedAt: number }>();
  const perIp = new Map<string, number>();
  const counted = new Set<string>();
  const inflight = new Set<Promise<unknown>>();

  return {
    add(conn) {
      conns.set(conn.id, { conn, startedAt: Date.now() });
    },
    get(id) {
      return conns.get(id)?.conn;
    },
    opened(session) {
      counted.add(session.id);
      const n = (perIp.get(session.remoteAddress) ?? 0) + 1;
      perIp.set(session.remoteAddress, n);
      return n;
    },
    closed(session) {
      conns.delete(session.id);
      if (!counted.delete(session.id)) return false;
      const n = (perIp.get(session.remoteAddress) ?? 1) - 1;
      if (n <= 0) perIp.delete(session.remoteAddress);
      else perIp.set(session.remoteAddress, n);
      return true;
    },
    track(work) {
      const settled: Promise<unknown> = work.finally(() => inflight.delete(settled));
      inflight.add(settled);
      settled.catch(() => {});
    },
    sessions() {
      return [...conns.values()].map(({ conn, startedAt }) => sessionInfo(conn, listener, startedAt));
    },
    async shutdown(graceMs) {
      // Sessions between transactions are told now; sessions in DATA finish first.
      for (const { conn } of conns.values()) if (!inDataMode(conn)) conn.send(421, "4.3.2 Service shutting down");
      const deadline = new Promise((r) => setTimeout(r, graceMs));
      while (inflight.size > 0) {
        const done = await Promise.race([
          Promise.allSettled([...inflight]).then(() => true),
          deadline.then(() => false),
        ]);
        if (!done) break;
      }
      for (const { conn } of conns.values()) {
        conn.send(421, "4.3.2 Service shutting down");
        socketOf(conn).destroy();
      }
    },
  };
}

function sessionInfo(conn: Connection, listener: string, startedAt: number): SessionInfo {
  const s = conn.session;
  const env = s.envelope;
  const cipher = s.tlsOptions as { name?: string; standardName?: string; version?: string } | false;
  const state: SessionInfo["state"] = inDataMode(conn)
    ? "data"
    : env?.rcptTo?.length
    ? "rcpt"
    : env?.mailFrom
    ? "mail"
    : s.hostNameAppearsAs
    ? "ehlo"
    : "connected";
  return {
    id: conn.id,
    listener,
    peer: `${s.remoteAddress}:${s.remotePort}`,
    state,
    tls: !!s.secure,
    helo: s.hostNameAppearsAs || undefined,
    tlsVersion: s.secure && cipher ? cipher.version : undefined,
    tlsCipher: s.secure && cipher ? cipher.standardName ?? cipher.name : undefined,
    user: userOf(s),
    startedAt,
  };
}
