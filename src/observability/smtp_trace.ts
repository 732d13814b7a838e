/**
 * Live SMTP tracing (`empathctl trace smtp`): listeners and the delivery client
 * report each line of their conversations here, and subscribers (the control
 * socket's streaming command) receive those of the peers they asked for.
 * Nothing is formatted or kept while nobody subscribes: `active` is false and
 * callers skip the work.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createSmtpTrace, type TraceEvent } from "./smtp_trace.ts"; // @ts-ignore deno#26900
 *
 * const trace = createSmtpTrace();
 * const seen: TraceEvent[] = [];
 * const stop = trace.subscribe({ peer: "192.0.2.1" }, (e) => seen.push(e));
 * if (trace.active) trace.emit({ at: Date.now(), side: "server", direction: "in", session: "s1", peer: "192.0.2.1:4000", line: "EHLO x" });
 * stop();
 * assert.deepEqual(seen.map((e) => [e.direction, e.line]), [["in", "EHLO x"]]);
 * assert.equal(trace.active, false); // no subscriber: sessions skip tracing
 * ```
 * @module
 */

/** One line of an SMTP conversation. */
export interface TraceEvent {
  at: number;
  /** "server": a session of our listeners; "client": one of our outbound deliveries. */
  side: "server" | "client";
  /** "in": the peer sent it; "out": we sent it. */
  direction: "in" | "out";
  session: string;
  /** The peer's address, "host:port" (or "[v6]:port"). */
  peer: string;
  line: string;
}

/** Which conversations a subscriber wants. */
export interface TraceFilter {
  /** Only this peer address (the host part, or "host:port"). */
  peer?: string;
}

/** The trace hub. */
export interface SmtpTrace {
  /** True while anyone subscribes. */
  readonly active: boolean;
  emit(event: TraceEvent): void;
  /** Starts delivering matching events to `fn`; returns the unsubscribe function. */
  subscribe(filter: TraceFilter, fn: (event: TraceEvent) => void): () => void;
}

const hostOf = (peer: string) => peer.replace(/^\[/, "").replace(/\]?:\d+$/, "");

/** Longest line passed on (a DATA line can be long; a trace is for reading). */
const MAX_LINE = 2000;

/** Creates a trace hub. */
export function createSmtpTrace(): SmtpTrace {
  const subscribers = new Set<{ filter: TraceFilter; fn: (e: TraceEvent) => void }>();
  return {
    get active() {
      return subscribers.size > 0;
    },
    emit(event) {
      const line = event.line.length > MAX_LINE ? `${event.line.slice(0, MAX_LINE)}…` : event.line;
      for (const s of subscribers) {
        const want = s.filter.peer;
        if (want && want !== event.peer && want !== hostOf(event.peer)) continue;
        try {
          s.fn({ ...event, line });
        } catch { /* a failing subscriber does not stop the others */ }
      }
    },
    subscribe(filter, fn) {
      const entry = { filter, fn };
      subscribers.add(entry);
      return () => void subscribers.delete(entry);
    },
  };
}

/** Splits what was sent or received into trace lines (CRLF or LF), dropping the empty tail. */
export function traceLines(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  return lines;
}
