/**
 * Feeds nodemailer's transaction log of an outbound SMTP session (commands we
 * send, with AUTH redacted by nodemailer, and the server's replies; never the
 * message data) into the live SMTP trace. Costs one property read per line while
 * nobody traces.
 * @module
 */
import type { SmtpTrace } from "../observability/mod.ts";

type Entry = { tnx?: string; sid?: string };

/** A bunyan-style logger for nodemailer's `logger` option, for one connection to `peer`. */
export function clientTraceLogger(trace: SmtpTrace, peer: string) {
  const noop = () => {};
  return {
    trace: noop,
    info: noop,
    warn: noop,
    error: noop,
    fatal: noop,
    debug(entry: Entry, message?: unknown) {
      if (!trace.active || (entry?.tnx !== "client" && entry?.tnx !== "server")) return;
      const at = Date.now();
      const direction = entry.tnx === "server" ? "in" : "out";
      for (const line of String(message ?? "").split(/\r?\n/)) {
        trace.emit({ at, side: "client", direction, session: entry.sid ?? "?", peer, line });
      }
    },
  };
}
