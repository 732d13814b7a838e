/**
 * The session hooks a listener calls at each SMTP step. They are injected into
 * {@link createSmtpListener} (`ListenerDeps.hooks`) the way smtp-server takes its
 * `onConnect`/`onMailFrom`/… callbacks: smtp/ defines what it calls and with what,
 * and knows nothing about who implements it (the daemon passes the module bridge).
 *
 * Every hook is optional, and a listener without hooks does no work for them.
 * Validation hooks (connect, helo, startTls, auth, mailFrom, rcptTo) resolve to an
 * {@link SmtpError} that refuses the step, or null to let it proceed; they must
 * never reject. Notifications (queued, error, closed) return nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reject } from "./errors.ts";
 * import type { HookSession, SessionHooks } from "./hooks.ts"; // @ts-ignore deno#26900
 *
 * const hooks: SessionHooks = {
 *   rcptTo(_session, rcpt) {
 *     return Promise.resolve(rcpt.address.endsWith("@blocked.example") ? reject(550, "5.7.1", "Not here") : null);
 *   },
 * };
 * // createSmtpListener(listenerConfig, { ...deps, hooks }) calls them at each step:
 * const session: HookSession = { id: "s1", listener: "mx", remote: { address: "192.0.2.1", port: 40000 }, helo: "client.example", tls: undefined, user: undefined, recipients: [] };
 * const verdict = await hooks.rcptTo?.(session, { address: "a@blocked.example", params: {} });
 * assert.equal(verdict !== "known" && verdict?.responseCode, 550);
 * ```
 * @module
 */
import type { QueueRecord } from "../queue/mod.ts";
import type { SmtpError } from "./errors.ts";
import type { QueueHook } from "./intake.ts";

/** A validation hook's answer: the refusal to send, or null to proceed. */
export type HookVerdict = SmtpError | null;

/**
 * The rcptTo hook's answer: a refusal, null (no objection), or "known" — the hook vouches that the
 * recipient exists, which satisfies recipient validation for local domains (`[recipients]`).
 */
export type RcptVerdict = HookVerdict | "known";

/**
 * The SMTP session as hooks see it. It is a live view (every read gives the current
 * state) and the same object for the whole session, so it can key a WeakMap.
 */
export interface HookSession {
  /** smtp-server's session id. */
  readonly id: string;
  /** Listener name. */
  readonly listener: string;
  /** Client address and port (after PROXY protocol). */
  readonly remote: { address: string; port: number };
  /** EHLO/HELO name once given. */
  readonly helo: string | undefined;
  /** TLS facts once the session is encrypted. */
  readonly tls: { version?: string; cipher?: string } | undefined;
  /** Authenticated user, once AUTH succeeded. */
  readonly user: string | undefined;
  /** Recipients accepted so far in the current transaction. */
  readonly recipients: string[];
}

/** A MAIL FROM or RCPT TO address with its ESMTP parameters. */
export interface HookAddress {
  /** The address as it will be stored (a domainless postmaster already has its domain). */
  address: string;
  /** ESMTP parameters, upper-cased names ("SIZE", "NOTIFY", …). */
  params: Record<string, string | true>;
}

/** The envelope at DATA, fixed for the message. */
export interface DataEnvelope {
  sender: string;
  recipients: string[];
}

/** What the `data` hook adds to the message about to be received. */
export interface DataPlan {
  /** Header fields (CRLF-terminated) written right below Empath's Received field. */
  headers?: string;
  /** Metadata stored with the queue record (when already known). */
  metadata?: Record<string, unknown>;
  /**
   * Runs once the data is durable and before the queue record is written: throw an
   * SmtpError to refuse the message, or return the metadata to store and a new size.
   */
  beforeQueue?: QueueHook;
  /** A module asked that this message not be DKIM-signed (`ctx.skipSigning()` before `data`). */
  skipSigning?: boolean;
}

/** The calls a listener makes; all optional. */
export interface SessionHooks {
  /** A client connected, before the greeting. A refusal is sent and the session closed. */
  connect?(session: HookSession): Promise<HookVerdict>;
  /** EHLO/HELO with one argument, before smtp-server handles it; a refusal is the reply instead. */
  helo?(session: HookSession, args: { name: string; esmtp: boolean }): Promise<HookVerdict>;
  /** STARTTLS on a clear-text session, before the handshake; a refusal is the reply instead. */
  startTls?(session: HookSession): Promise<HookVerdict>;
  /** Credentials were valid; a refusal refuses the login. */
  auth?(session: HookSession, args: { method: string; username: string }): Promise<HookVerdict>;
  /** MAIL FROM passed Empath's own checks. */
  mailFrom?(session: HookSession, sender: HookAddress): Promise<HookVerdict>;
  /** RCPT TO passed the relay policy; "known" vouches for a local recipient (see {@link RcptVerdict}). */
  rcptTo?(session: HookSession, recipient: HookAddress): Promise<RcptVerdict>;
  /** DATA begins: header fields, metadata and a check to run before the message is queued. */
  data?(session: HookSession, envelope: DataEnvelope): DataPlan;
  /** The message was queued and the client got its 250. */
  queued?(session: HookSession, record: QueueRecord): void;
  /** Empath sent an error reply (4xx/5xx) to the client. */
  error?(session: HookSession, code: number, reply: string): void;
  /** The session ended. */
  closed?(session: HookSession): void;
}
