/**
 * Feeds smtp-server's own protocol log (its "C:" command lines, with AUTH
 * credentials already redacted, and "S:" replies) into the live SMTP trace.
 * Costs one property read per line while nobody traces.
 * @module
 */
import type { SmtpTrace } from "../observability/mod.ts";

type Entry = { tnx?: string; cid?: string };

/** A bunyan-style logger for smtp-server's `logger` option; `peerOf` names a session's peer. */
export function traceLogger(trace: SmtpTrace, peerOf: (cid: string) => string | undefined) {
  const noop = () => {};
  return {
    trace: noop,
    info: noop,
    warn: noop,
    error: noop,
    fatal: noop,
    debug(entry: Entry, _label: string, line?: unknown) {
      if (!trace.active || !entry?.cid || (entry.tnx !== "send" && entry.tnx !== "command")) return;
      const at = Date.now();
      const direction = entry.tnx === "command" ? "in" : "out";
      const peer = peerOf(entry.cid) ?? "?";
      for (const text of String(line ?? "").split("\r\n")) {
        trace.emit({ at, side: "server", direction, session: entry.cid, peer, line: text });
      }
    },
  };
}
