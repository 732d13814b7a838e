/**
 * The module API: what a module exports, the hooks it may implement, the
 * {@link Context} every hook receives and the verdicts validation hooks return.
 *
 * A module is a TypeScript file whose default export is a factory (called once
 * with the module's options and a logger) returning its hooks, or an object with
 * the hooks (and an optional `init`). Hooks may be sync or async.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { accept, defineModule, reject } from "./mod.ts"; // @ts-ignore deno#26900
 *
 * // modules/no_example_net.ts: `export default defineModule(…)`
 * const factory = defineModule<{ domain: string }>(({ options, log }) => ({
 *   rcptTo(_ctx, rcpt) {
 *     if (rcpt.address.endsWith(`@${options.domain}`)) return reject("No mail for you", 550, "5.7.1");
 *     return accept();
 *   },
 *   deliverySuccess(ctx) {
 *     log.info("delivered {id}", { id: ctx.messageId });
 *   },
 * }));
 * const hooks = await factory({ name: "no-example-net", options: { domain: "example.net" }, log: getLogger(["empath"]) });
 * assert.equal(typeof hooks.rcptTo, "function");
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Priority } from "../queue/mod.ts";

/** Validation hooks: may accept, reject (5xx) or defer (4xx) the SMTP step. Run in config order. */
export const VALIDATION_HOOKS = ["connect", "ehlo", "startTls", "auth", "mailFrom", "rcptTo", "data"] as const;
/** Event hooks: awaited (within the time budget) but they cannot block mail. */
export const EVENT_HOOKS = [
  "connectionOpened",
  "connectionClosed",
  "messageReceived",
  "deliveryAttempt",
  "deliverySuccess",
  "deliveryFailure",
  "dnsLookup",
  "smtpError",
] as const;

/** A validation hook's name. */
export type ValidationHook = typeof VALIDATION_HOOKS[number];
/** An event hook's name. */
export type EventHook = typeof EVENT_HOOKS[number];
/** Any hook's name. */
export type HookName = ValidationHook | EventHook;

/** Refuse the step: permanently (5xx) or temporarily (4xx). */
export interface Rejection {
  action: "reject" | "defer";
  /** SMTP reply code: 500-599 for reject, 400-499 for defer. Defaults depend on the hook (550/451 mostly). */
  code?: number;
  /** RFC 3463 enhanced status code ("5.7.1"); its class must match the code. Default `<class>.7.1`. */
  enhanced?: string;
  /** Reply text shown to the client (one line; line breaks are replaced by spaces). */
  text: string;
}

/** What a validation hook returns: nothing (or `{ action: "accept" }`) accepts. */
export type Verdict = void | undefined | { action: "accept" } | Rejection;

/** A hook's return value: sync or async. */
export type HookResult<T = Verdict> = T | Promise<T>;

/** The SMTP client, as known when the hook runs. Delivery hooks get what was recorded at intake. */
export interface SessionInfo {
  /** smtp-server session id (absent in delivery hooks). */
  id?: string;
  /** Listener name. */
  listener: string;
  /** Client address and port (after PROXY protocol). */
  remote: { address: string; port?: number };
  /** EHLO/HELO name once given. */
  helo?: string;
  /** TLS facts once the session is encrypted (delivery hooks: version only). */
  tls?: { version?: string; cipher?: string };
  /** Authenticated user, once AUTH succeeded. */
  user?: string;
}

/** The envelope so far. */
export interface Envelope {
  /** MAIL FROM address ("" is the null sender); undefined before MAIL FROM. */
  sender?: string;
  /** Accepted recipients (in `rcptTo`, the recipient being checked is not yet in this list). */
  recipients: string[];
}

/** Given to every hook. */
export interface Context {
  /** The hook being run. */
  readonly hook: HookName;
  /** This module's instance name (config `name`). */
  readonly module: string;
  /** The SMTP client (absent only in `dnsLookup`). */
  readonly session?: SessionInfo;
  readonly envelope: Envelope;
  /** Queue id of the message (from `data` on; `messageReceived` and delivery hooks). */
  readonly messageId?: string;
  /**
   * This module's notes about the message: a JSON-serialisable object, private to
   * the module. Values set during the SMTP transaction (up to and including `data`)
   * are stored with the queue record and seen again in delivery hooks, even after
   * restarts; values set in connect/ehlo/auth/startTls apply to every message of the
   * session. Changes made in delivery hooks are stored while the message stays
   * queued. Changes in `messageReceived` are not stored (the record is already written).
   */
  readonly metadata: Record<string, unknown>;
  /** Aborted when the hook's time budget runs out: stop work that is no longer wanted. */
  readonly signal: AbortSignal;
  /**
   * The message's delivery priority ("critical", "high", "normal", "low"), SMTP hooks only:
   * set it from `connect` to `data` (in session hooks it applies to every message of the
   * session). It overrides the listener's and the user's configured level. Empath never reads
   * it from a header; a module may, if it trusts the client.
   */
  priority?: Priority;
  /**
   * Adds a header field to the message being received (from `connect` to `data`).
   * Fields added before `data` are written with the message at no cost; fields added
   * in `data` make Empath rewrite the stored message once. Throws a TypeError for an
   * invalid name or value, or outside the SMTP transaction.
   */
  addHeader(name: string, value: string): void;
  /**
   * Inbound SPF/DKIM/DMARC/ARC results of the message (mx listeners with `[auth] enabled`),
   * from `data` on; undefined for mail that was not checked. See README "Inbound authentication".
   */
  readonly auth?: AuthResults;
  /**
   * Asks Empath not to DKIM-sign this message (from `mailFrom` up to and including `data`);
   * the metadata flag is not needed. Throws a TypeError outside the SMTP transaction.
   */
  skipSigning(): void;
}

/** What the inbound checks found (`ctx.auth`, and `empath:auth` in the stored metadata). */
export interface AuthResults {
  spf: { result: string; domain?: string };
  dkim: { result: string; domain?: string; selector?: string; aligned: boolean }[];
  dmarc?: { result: string; domain: string; policy: string };
  arc: { result: string };
  /** accept | quarantine (a reject or tempfail never reaches a module's data hook). */
  action: string;
  reasons: string[];
  /** The Authentication-Results value Empath added. */
  header: string;
}

/** ESMTP address with its parameters (MAIL FROM / RCPT TO). */
export interface AddressArgs {
  address: string;
  /** ESMTP parameters, upper-cased names ("SIZE", "NOTIFY", …). */
  params: Record<string, string | true>;
}

/** A message's header section, parsed (unfolded; values are raw, not MIME-decoded). */
export interface MessageHeaders {
  /** All fields in order. */
  readonly list: readonly { name: string; value: string }[];
  /** First value of a field (case-insensitive), or undefined. */
  get(name: string): string | undefined;
  /** All values of a field, in order. */
  getAll(name: string): string[];
  has(name: string): boolean;
}

/** The message as given to the `data` hook: it is on disk (fsync'd) but not yet queued or acknowledged. */
export interface MessageData {
  readonly id: string;
  /** Size in bytes as stored (with Empath's Received header). */
  readonly size: number;
  readonly headers: MessageHeaders;
  /** A fresh stream of the body (after the blank line). Call again for another pass. */
  body(): ReadableStream<Uint8Array>;
  /** A fresh stream of the whole stored message (headers and body). */
  raw(): ReadableStream<Uint8Array>;
}

/** One delivery attempt, for `deliveryAttempt`. */
export interface DeliveryAttemptInfo {
  at: number;
  durationMs: number;
  server?: string;
  tls?: boolean;
  result: { address: string; code?: number; reply: string; outcome: "delivered" | "deferred" | "failed" }[];
}

/** For `deliverySuccess`: recipients delivered by one attempt. */
export interface DeliverySuccessInfo {
  recipients: string[];
  server?: string;
  /** The reply of the first delivered recipient. */
  reply: string;
}

/** For `deliveryFailure`: recipients that failed (permanent) or were deferred (temporary). */
export interface DeliveryFailureInfo {
  recipients: string[];
  permanent: boolean;
  /** Last reply, or why no attempt was made ("expired", "bounced by operator"). */
  reason: string;
  server?: string;
}

/** For `dnsLookup` (delivery's resolver). */
export interface DnsLookupInfo {
  name: string;
  type: string;
  result: string;
  durationMs: number;
  cached: boolean;
}

/** For `smtpError`: an error reply Empath sent to a client. */
export interface SmtpErrorInfo {
  code: number;
  reply: string;
}

/** The hooks a module may implement (all optional). */
export interface ModuleHooks {
  /** A client connected (before the greeting). Reject → 554 and close; defer → 421 and close. */
  connect?(ctx: Context): HookResult;
  ehlo?(ctx: Context, args: { name: string; esmtp: boolean }): HookResult;
  /** STARTTLS was asked for (before the handshake). */
  startTls?(ctx: Context): HookResult;
  /** Credentials were valid; a rejection refuses the login (default 535 5.7.8). */
  auth?(ctx: Context, args: { method: string; username: string }): HookResult;
  mailFrom?(ctx: Context, args: AddressArgs): HookResult;
  rcptTo?(ctx: Context, args: AddressArgs): HookResult;
  /** End of DATA: the message is stored and fsync'd, not yet queued; a rejection removes it. */
  data?(ctx: Context, message: MessageData): HookResult;

  connectionOpened?(ctx: Context): HookResult<void>;
  connectionClosed?(ctx: Context): HookResult<void>;
  /** After the message is queued and the client got 250. */
  messageReceived?(ctx: Context, message: { id: string; size: number }): HookResult<void>;
  deliveryAttempt?(ctx: Context, attempt: DeliveryAttemptInfo): HookResult<void>;
  deliverySuccess?(ctx: Context, info: DeliverySuccessInfo): HookResult<void>;
  deliveryFailure?(ctx: Context, info: DeliveryFailureInfo): HookResult<void>;
  /** Not awaited by the resolver: it runs alongside the lookup's user. */
  dnsLookup?(ctx: Context, info: DnsLookupInfo): HookResult<void>;
  /** Not awaited by the SMTP session: it runs alongside it. */
  smtpError?(ctx: Context, info: SmtpErrorInfo): HookResult<void>;

  /** Called once at shutdown. */
  close?(): void | Promise<void>;
}

/** What a module's factory/init receives. */
export interface ModuleInit<O = Record<string, unknown>> {
  /** Instance name (config `name`, default: the file name or builtin name). */
  name: string;
  /** The `options` table from config (empty object when absent). */
  options: O;
  /** A logger with category ["empath", "module", name]. */
  log: Logger;
}

/** Default export form 1: a factory, called once at start-up. */
export type ModuleFactory<O = Record<string, unknown>> = (init: ModuleInit<O>) => ModuleHooks | Promise<ModuleHooks>;

/** Default export form 2: an object with hooks and an optional `init`. */
export interface ModuleDefinition<O = Record<string, unknown>> extends ModuleHooks {
  init?(init: ModuleInit<O>): void | Promise<void>;
}
