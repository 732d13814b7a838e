/**
 * A {@link ConnectionPool} whose SMTP sessions live in a Worker (pool_worker.ts), so
 * that outbound SMTP — sockets, nodemailer's protocol handling, streaming and
 * dot-stuffing the data — runs on a second core while the main thread receives
 * mail and keeps the queue (`delivery.worker = true`; off by default, see the
 * config schema for why).
 *
 * The engine's thread still decides everything: routes, DNS, TLS policy, limits,
 * outcomes. Sessions that need the engine's thread stay there, in a local pool:
 * a DANE-checked session (its check is a function over the engine's TLSA answers)
 * and any session opened while someone runs `empathctl trace smtp`. A message is
 * handed over as its envelope plus its bytes (a just-committed message's in-memory
 * copy) or its spool file range, which the worker reads itself.
 *
 * If the worker dies, every request in flight fails (the deliveries are deferred
 * and retried like after a dropped connection) and the next acquire starts a new one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createWorkerPool } from "./worker_pool.ts"; // @ts-ignore deno#26900
 *
 * const pool = createWorkerPool({ maxPerDestination: 2, idleTimeoutMs: 1000, maxMessagesPerConnection: 10 });
 * assert.deepEqual(pool.stats(), []); // the worker starts with the first session
 * await pool.closeAll();
 * ```
 * @module
 */
import { type ConnectionPool, createConnectionPool, type PooledSession, type PoolOptions } from "./connection_pool.ts";
import { fromWireError, type PoolReply, type PoolRequest, type WireMessage, type WireTarget } from "./pool_protocol.ts";
import type { DeliveryResult, DeliveryTarget, OutboundMessage } from "./smtp_client.ts";
import type { MessageSource } from "../spool/mod.ts";

type Stats = ReturnType<ConnectionPool["stats"]>;

interface Pending {
  resolve: (reply: PoolReply) => void;
  reject: (err: Error) => void;
}

/** A session held by the worker. */
class RemoteSession implements PooledSession {
  /** The worker takes the session back itself after a send (see pool_worker.ts). */
  sent = false;
  constructor(readonly id: number, readonly worker: Worker, private readonly call: CallFn) {}

  async send(message: OutboundMessage): Promise<DeliveryResult> {
    if (this.sent) throw new Error("outbound SMTP worker: one message per acquired session");
    const { open, source: sourceOf, ...envelope } = message;
    const source: MessageSource = sourceOf?.() ?? { chunks: await readAll(open()) };
    const wire: WireMessage = { ...envelope, source };
    this.sent = true; // from here on the worker releases the session
    const reply = await this.call(this.worker, (req) => ({ op: "send", req, session: this.id, message: wire }));
    if (reply.op !== "sent") throw new Error(`outbound SMTP worker: unexpected reply ${reply.op}`);
    return reply.result;
  }
}

type CallFn = (worker: Worker, build: (req: number) => PoolRequest) => Promise<PoolReply>;

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** Creates the pool; the worker starts with the first session it is asked for. */
export function createWorkerPool(options: Omit<PoolOptions, "open">): ConnectionPool {
  const local = createConnectionPool(options);
  const localSessions = new WeakSet<PooledSession>();
  const pending = new Map<number, Pending>();
  let nextReq = 1;
  let worker: Worker | undefined;
  let remoteStats: Stats = [];
  let closed = false;

  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };

  const start = (): Worker => {
    const w = new Worker(new URL("./pool_worker.ts", import.meta.url), { type: "module" });
    w.onmessage = (e: MessageEvent<PoolReply>) => {
      const reply = e.data;
      if (reply.op === "stats") {
        if (w === worker) remoteStats = reply.stats;
        return;
      }
      const p = pending.get(reply.req);
      if (!p) return;
      pending.delete(reply.req);
      if (reply.op === "failed") p.reject(fromWireError(reply.error));
      else p.resolve(reply);
    };
    w.onerror = (e) => {
      e.preventDefault(); // the daemon keeps running; the deliveries in flight are deferred
      if (w === worker) {
        worker = undefined;
        remoteStats = [];
      }
      w.terminate();
      failAll(new Error(`outbound SMTP worker failed: ${e.message}`));
    };
    w.postMessage({ op: "init", options } satisfies PoolRequest);
    return w;
  };

  const call: CallFn = (w, build) =>
    new Promise((resolve, reject) => {
      const req = nextReq++;
      pending.set(req, { resolve, reject });
      w.postMessage(build(req));
    });

  return {
    async acquire(target: DeliveryTarget): Promise<PooledSession> {
      if (closed) throw new Error("connection pool is closed");
      if (target.verifyPeer || target.trace?.active) {
        const session = await local.acquire(target);
        localSessions.add(session);
        return session;
      }
      const w = worker ??= start();
      const { trace: _t, verifyPeer: _v, ...wire } = target;
      const reply = await call(w, (req) => ({ op: "acquire", req, target: wire satisfies WireTarget }));
      if (reply.op !== "acquired") throw new Error(`outbound SMTP worker: unexpected reply ${reply.op}`);
      return new RemoteSession(reply.session, w, call);
    },
    release(session, reusable) {
      if (localSessions.has(session)) return local.release(session, reusable);
      const remote = session as RemoteSession;
      if (!remote.sent && remote.worker === worker) {
        remote.worker.postMessage({ op: "release", session: remote.id, reusable } satisfies PoolRequest);
      }
    },
    async closeAll() {
      closed = true;
      const w = worker;
      worker = undefined;
      remoteStats = [];
      await Promise.all([
        local.closeAll(),
        w && call(w, (req) => ({ op: "close", req })).catch(() => {}).finally(() => w.terminate()),
      ]);
    },
    stats() {
      return [...remoteStats, ...local.stats()];
    },
  };
}
