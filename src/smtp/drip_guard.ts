/**
 * Deadlines against slowloris clients. smtp-server's timeouts are idle timers that every
 * received byte resets, so a client that drips a byte every few seconds would hold its
 * session (and a connection slot) for hours. Like Postfix's `smtpd_per_request_deadline`
 * and `smtpd_min_data_rate`:
 *
 * - a command line must be complete within `smtp.timeouts.command` of its first byte;
 * - message data must arrive within `smtp.timeouts.data_block`, extended by one second for
 *   every `smtp.min_data_rate` bytes received.
 *
 * Both watch the plain-text command parser (a new one after STARTTLS is guarded too), so
 * they work the same with and without TLS.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ParserTap } from "./smtp_server_private.ts";
 * import { guardParser } from "./drip_guard.ts"; // @ts-ignore deno#26900
 *
 * // In a listener: watchParsers(conn, (parser) => guardParser(tapParser(parser), limits, onSlow)).
 * // Here a stand-in tap shows a client that starts a command line and never ends it.
 * let input = (_chunk: Uint8Array) => {};
 * const tap: ParserTap = {
 *   onInput: (fn) => void (input = fn),
 *   onEnd: () => {},
 *   closed: () => false,
 *   dataMode: () => false,
 *   partialLine: () => true,
 * };
 * const slow = Promise.withResolvers<string>();
 * const watchdog = setTimeout(() => slow.reject(new Error("no deadline")), 10_000); // its timers are unref'd
 * guardParser(tap, () => ({ command: 0, dataBlock: 180_000, minDataRate: 500 }), (what) => slow.resolve(what));
 * input(new TextEncoder().encode("MAIL FROM:<a@exam"));
 * assert.equal(await slow.promise, "command"); // the session is told "421 … timeout" and closed
 * clearTimeout(watchdog);
 * ```
 * @module
 */
import type { ParserTap } from "./smtp_server_private.ts";

/** The limits, read on every check (config reloads apply). */
export interface DripLimits {
  /** ms a command line may take from its first byte. */
  command: number;
  /** ms of base allowance for message data. */
  dataBlock: number;
  /** bytes per second that earn one more second for message data; 0 = no extension. */
  minDataRate: number;
}

/** Timers never keep the process alive on their own. */
function unref(timer: ReturnType<typeof setTimeout>) {
  Deno.unrefTimer(timer as unknown as number);
  return timer;
}

/** Watches the parser's input to enforce the deadlines; `onSlow` ends the session. */
export function guardParser(
  parser: ParserTap,
  limits: () => DripLimits,
  onSlow: (what: "command" | "data") => void,
): void {
  let commandTimer: ReturnType<typeof setTimeout> | undefined;
  let dataTimer: ReturnType<typeof setTimeout> | undefined;
  let dataStart = 0;
  let dataBytes = 0;

  const stopCommand = () => {
    clearTimeout(commandTimer);
    commandTimer = undefined;
  };
  const stopData = () => {
    clearTimeout(dataTimer);
    dataTimer = undefined;
    dataStart = 0;
    dataBytes = 0;
  };
  const dataDeadline = () => {
    const l = limits();
    return dataStart + l.dataBlock + (l.minDataRate > 0 ? (dataBytes / l.minDataRate) * 1000 : 0);
  };
  const checkData = () => {
    dataTimer = undefined;
    if (parser.closed() || !parser.dataMode()) return stopData();
    const left = dataDeadline() - Date.now();
    if (left > 0) {
      dataTimer = unref(setTimeout(checkData, left));
      return;
    }
    stopData();
    onSlow("data");
  };

  parser.onInput((chunk) => {
    if (parser.dataMode()) {
      stopCommand();
      if (!dataStart) dataStart = Date.now();
      dataBytes += chunk.length;
      if (!dataTimer) dataTimer = unref(setTimeout(checkData, Math.max(0, dataDeadline() - Date.now())));
    } else {
      if (dataStart) stopData();
      if (chunk.lastIndexOf(10) >= 0) stopCommand();
      if (chunk.length > 0 && chunk[chunk.length - 1] !== 10 && !commandTimer) {
        commandTimer = unref(setTimeout(() => {
          commandTimer = undefined;
          // Only a command line still incomplete counts (not a client waiting for our reply).
          if (!parser.closed() && !parser.dataMode() && parser.partialLine()) onSlow("command");
        }, limits().command));
      }
    }
  });
  // The parser is a stream: it finishes or is destroyed when the session ends.
  parser.onEnd(() => {
    stopCommand();
    stopData();
  });
}
