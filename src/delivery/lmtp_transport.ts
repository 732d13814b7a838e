/**
 * LMTP (RFC 2033) as a {@link DeliveryTransport}: local delivery to Dovecot, Cyrus
 * and the like over `lmtp = "unix:/path"` or `"host:port"`. Sessions are pooled per
 * target and carry many messages (one LHLO each). Every recipient gets its own
 * outcome from its own reply: 2xx delivered, 4xx deferred (e.g. 452 mailbox full),
 * 5xx failed (bounced) — for that recipient only.
 *
 * A pooled session the server closed while idle fails before DATA; the message is
 * then retried once on a fresh connection (nothing was delivered). A connection lost
 * while post-DATA replies arrive keeps the replies already read; the recipients
 * without one are deferred (they may have been delivered: RFC 2033 4.2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type net from "node:net";
 * import { Readable } from "node:stream";
 * import { getLogger } from "@logtape/logtape";
 * import { SMTPServer } from "smtp-server";
 * import { parseConfig } from "../config/load.ts";
 * import { createLmtpTransport } from "./lmtp_transport.ts"; // @ts-ignore deno#26900
 *
 * const peer = new SMTPServer({ lmtp: true, authOptional: true, disabledCommands: ["STARTTLS"], onData: (stream, _s, done) => stream.on("end", done).resume() });
 * await new Promise<void>((resolve) => peer.listen(0, "127.0.0.1", resolve));
 * const port = (peer.server.address() as net.AddressInfo).port;
 * const config = parseConfig(`[delivery.domains."example.com"]\ntransport = "lmtp"\nlmtp = "127.0.0.1:${port}"\n`, "config.toml");
 *
 * const lmtp = createLmtpTransport({ config: () => config, hostname: "mx.example", log: getLogger(["empath"]) });
 * const data = "Subject: hi\r\n\r\nbody\r\n";
 * const message = { sender: "a@example.com", recipients: [{ address: "b@example.com" }], size: data.length, open: () => Readable.from([new TextEncoder().encode(data)]) };
 * const result = await lmtp.deliver({ id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R", domain: "example.com", message });
 * assert.equal(result.recipients[0]?.outcome, "delivered");
 * await lmtp.close?.(); // idle sessions are pooled until then
 * await new Promise<void>((resolve) => peer.close(() => resolve()));
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import { formatLmtpTarget, LmtpError, type LmtpRecipientReply, LmtpSession, parseLmtpTarget } from "./lmtp_client.ts";
import { allRecipients, type DeliveryTransport, type TransportJob, type TransportResult } from "./transport.ts";
import { chooseTransport } from "./transport_select.ts";

/** What the LMTP transport needs. */
export interface LmtpTransportOptions {
  config: () => Config;
  /** LHLO name when delivery.helo_name is not set. */
  hostname: string;
  log: Logger;
}

interface Idle {
  session: LmtpSession;
  timer: ReturnType<typeof setTimeout>;
}

const outcomeOf = (code: number) => code >= 200 && code < 300 ? "delivered" : code >= 500 ? "failed" : "deferred";

/** Creates the LMTP transport. */
export function createLmtpTransport(options: LmtpTransportOptions): DeliveryTransport {
  const { log } = options;
  const idle = new Map<string, Idle[]>();
  let closed = false;

  function take(key: string): LmtpSession | undefined {
    const list = idle.get(key) ?? [];
    while (list.length > 0) {
      const entry = list.pop()!;
      clearTimeout(entry.timer);
      if (entry.session.isUsable) return entry.session;
    }
    return undefined;
  }

  function giveBack(key: string, session: LmtpSession, d: Config["delivery"]) {
    if (closed || !session.isUsable || session.messagesSent >= d.pool.max_messages_per_connection) {
      void session.close();
      return;
    }
    const list = idle.get(key) ?? [];
    idle.set(key, list);
    const entry: Idle = {
      session,
      timer: setTimeout(() => {
        list.splice(list.indexOf(entry), 1);
        void session.close();
      }, d.pool.idle_timeout),
    };
    Deno.unrefTimer(entry.timer as unknown as number);
    list.push(entry);
  }

  async function deliver(job: TransportJob): Promise<TransportResult> {
    const { id, domain, message } = job;
    const rcpts = () => message.recipients.map((r) => r.address);
    const config = options.config();
    const d = config.delivery;
    const choice = chooseTransport(domain, config);
    const target = choice.kind === "lmtp" ? parseLmtpTarget(choice.target) : undefined;
    if (!target) {
      const reply = `451 4.3.5 No LMTP target configured for ${domain}`;
      return { recipients: allRecipients(rcpts(), "deferred", reply), error: reply };
    }
    const server = formatLmtpTarget(target);
    const sessionOptions = { lhloName: d.helo_name ?? options.hostname, timeoutMs: d.timeouts.command };
    let replies: LmtpRecipientReply[] | undefined;
    let failure: LmtpError | undefined;
    for (let attempt = 0; attempt < 2 && replies === undefined; attempt++) {
      const pooled = attempt === 0 ? take(server) : undefined;
      let session: LmtpSession;
      try {
        session = pooled ?? await LmtpSession.open(target, sessionOptions);
      } catch (err) {
        const e = err as LmtpError;
        const reply = `451 4.4.1 LMTP server ${server} unavailable: ${e.message}`;
        return {
          recipients: allRecipients(rcpts(), "deferred", reply),
          server,
          error: e.message,
          connectionFailed: true,
        };
      }
      try {
        replies = await session.send(message);
        giveBack(server, session, d);
      } catch (err) {
        failure = err as LmtpError;
        void session.close();
        // A stale pooled session fails before DATA: nothing was delivered, so try a fresh one.
        if (!(pooled && failure.phase === "envelope")) break;
        log.debug("{id}: pooled LMTP session to {server} was stale ({error}); reconnecting", {
          id,
          server,
          error: failure.message,
        });
      }
    }
    const got = replies ?? failure?.partial ?? [];
    const byAddress = new Map(got.map((r) => [r.address, r]));
    const lost = `451 4.4.2 LMTP session with ${server} failed during ${failure?.phase}: ${failure?.message}`;
    return {
      server,
      recipients: rcpts().map((address) => {
        const r = byAddress.get(address);
        return r
          ? { address, outcome: outcomeOf(r.code), code: r.code, reply: r.reply, remoteMta: server }
          : { address, outcome: "deferred" as const, reply: lost, remoteMta: server };
      }),
      error: replies ? undefined : failure?.message,
    };
  }

  async function close() {
    closed = true;
    const all = [...idle.values()].flat();
    idle.clear();
    for (const e of all) clearTimeout(e.timer);
    await Promise.all(all.map((e) => e.session.close()));
  }

  return { kind: "lmtp", deliver, close };
}
