/**
 * The outbound SMTP worker: a Web Worker that holds the pooled SMTP sessions
 * (connect, EHLO, STARTTLS, MAIL/RCPT/DATA with nodemailer, the data stream and
 * its dot-stuffing) so that this work runs on a second core, beside the main
 * thread's SMTP intake and queue. Routing, DNS, MTA-STS and DANE decisions, the
 * queue and the spool's bookkeeping stay on the engine's thread; this worker only
 * opens the message bytes it is given (in memory, or a file range; see
 * spool/source.ts). Started by worker_pool.ts; speaks pool_protocol.ts.
 * @module
 */
import { openSource } from "../spool/mod.ts";
import { type ConnectionPool, createConnectionPool, type PooledSession } from "./connection_pool.ts";
import { type PoolReply, type PoolRequest, toWireError } from "./pool_protocol.ts";
import { startHeapTrim } from "../util/heap_trim.ts";

/** How often the pool's per-destination counts are sent to the engine (for the metrics gauge). */
const STATS_MS = 1000;

interface WorkerScope {
  onmessage: ((e: MessageEvent<PoolRequest>) => void) | null;
  postMessage(reply: PoolReply): void;
  close(): void;
}
const scope = globalThis as unknown as WorkerScope;

let pool: ConnectionPool | undefined;
const sessions = new Map<number, PooledSession>();
let nextSession = 1;
let statsTimer: ReturnType<typeof setInterval> | undefined;
let work = 0;
/** This isolate's heap is trimmed after bursts like the main thread's (see util/heap_trim.ts). */
const heapTrim = startHeapTrim({ activity: () => work + sessions.size });

const post = (reply: PoolReply) => scope.postMessage(reply);

scope.onmessage = (e) => {
  const msg = e.data;
  switch (msg.op) {
    case "init":
      pool = createConnectionPool(msg.options);
      statsTimer = setInterval(() => post({ op: "stats", stats: pool!.stats() }), STATS_MS);
      return;
    case "acquire":
      pool!.acquire(msg.target).then((session) => {
        const id = nextSession++;
        sessions.set(id, session);
        post({ op: "acquired", req: msg.req, session: id });
      }, (err) => post({ op: "failed", req: msg.req, error: toWireError(err) }));
      return;
    case "send": {
      const session = sessions.get(msg.session);
      if (!session) {
        post({ op: "failed", req: msg.req, error: { name: "Error", message: `no session ${msg.session}` } });
        return;
      }
      // One message per acquire (smtp_transport.ts): the session goes back to the pool right after its
      // send, as the engine would release it (reusable after a result, closed after an error), saving a
      // round trip per message.
      sessions.delete(msg.session);
      work++;
      const { source, ...message } = msg.message;
      session.send({ ...message, open: () => openSource(source) }).then(
        (result) => {
          pool!.release(session, true);
          post({ op: "sent", req: msg.req, result });
        },
        (err) => {
          pool!.release(session, false);
          post({ op: "failed", req: msg.req, error: toWireError(err) });
        },
      );
      return;
    }
    case "release": {
      const session = sessions.get(msg.session);
      sessions.delete(msg.session);
      if (session) pool!.release(session, msg.reusable);
      return;
    }
    case "close":
      clearInterval(statsTimer);
      heapTrim.stop();
      (pool?.closeAll() ?? Promise.resolve()).finally(() => post({ op: "closed", req: msg.req }));
      return;
  }
};
