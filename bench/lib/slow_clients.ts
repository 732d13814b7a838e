/**
 * Slow ("slowloris") SMTP clients for the connection benchmark. Each kind stops
 * making progress at a different point and records when, and with what reply, the
 * server cut it off:
 *
 * - `silent-greeting`: reads the 220, never says anything;
 * - `silent-command`: sends half a command (`MAIL FROM:<slow@example.com`, no CRLF), then nothing;
 * - `drip-command`: after EHLO sends one byte of a command every `dripMs`, never the CRLF;
 * - `silent-data`: after `354` sends one header line, then nothing;
 * - `drip-data`: after `354` sends one byte of message text every `dripMs`.
 * @module
 */
import { SmtpClient } from "../../testing/smtp_client.ts";
import { openSession } from "./client.ts";

/** The kinds of slow client. */
export const SLOW_KINDS = ["silent-greeting", "silent-command", "drip-command", "silent-data", "drip-data"] as const;
export type SlowKind = typeof SLOW_KINDS[number];

/** What happened to one slow client. */
export interface SlowOutcome {
  kind: SlowKind;
  /** The server closed the connection within the observation window. */
  cut: boolean;
  /** Seconds from the moment the client stopped progressing (last byte, or first dripped byte) to the close. */
  secondsToCut: number;
  /** What the server sent before closing (last line), e.g. "421 … Timeout - closing connection". */
  reply: string;
  /** Bytes sent one at a time. */
  dripped: number;
  error?: string;
}

const encoder = new TextEncoder();

/** A running slow client. */
export interface SlowClient {
  kind: SlowKind;
  /** Resolves when the server closed the connection or `stop()` was called. */
  readonly done: Promise<SlowOutcome>;
  stop(): void;
}

/** Starts one slow client of `kind` against `port`. */
export function startSlowClient(port: number, kind: SlowKind, dripMs: number): SlowClient {
  let stopped = false;
  let conn: SmtpClient | undefined;
  const done = (async (): Promise<SlowOutcome> => {
    let dripped = 0;
    let from = performance.now();
    try {
      if (kind === "silent-greeting") {
        conn = await SmtpClient.connect(port);
        const g = await conn.tryReply();
        if (g.code !== 220) throw new Error(`greeting: ${g.text}`);
      } else {
        conn = await openSession(port, "slow.bench.test");
      }
      if (kind === "silent-data" || kind === "drip-data") {
        for (
          const [line, code] of [["MAIL FROM:<slow@example.com>", 250], ["RCPT TO:<sink@example.net>", 250]] as const
        ) {
          const r = await conn.tryCmd(line);
          if (r.code !== code) throw new Error(`${line}: ${r.text}`);
        }
        const r = await conn.tryCmd("DATA");
        if (r.code !== 354) throw new Error(`DATA: ${r.text}`);
        await conn.write("Subject: slow\r\n");
      }
      if (kind === "silent-command") await conn.write("MAIL FROM:<slow@example.com");
      from = performance.now();
      const c = conn;
      const closing = c.readToEnd();
      if (kind === "drip-command" || kind === "drip-data") {
        const text = kind === "drip-command" ? "MAIL FROM:<" + "s".repeat(1_000_000) : "";
        void (async () => {
          while (!stopped && !c.closed) {
            const byte = kind === "drip-command" ? text[dripped] : (dripped % 70 === 69 ? "\n" : "x");
            // In DATA a line ends with CRLF: the "\n" slot sends "\r\n".
            if (!(await c.write(encoder.encode(byte === "\n" ? "\r\n" : byte)))) break;
            dripped++;
            await new Promise((r) => setTimeout(r, dripMs));
          }
        })();
      }
      const text = await closing;
      const lines = text.trim().split("\r\n");
      return {
        kind,
        cut: !stopped,
        secondsToCut: ((c.closedAt || performance.now()) - from) / 1000,
        reply: lines.at(-1) ?? "",
        dripped,
      };
    } catch (err) {
      return {
        kind,
        cut: false,
        secondsToCut: (performance.now() - from) / 1000,
        reply: "",
        dripped,
        error: (err as Error).message,
      };
    }
  })();
  return {
    kind,
    done,
    stop() {
      stopped = true;
      conn?.close();
    },
  };
}
