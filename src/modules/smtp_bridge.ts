/**
 * Modules in the SMTP session: per-session state (metadata, added header fields),
 * the {@link Context} each hook gets, and the calls the listener makes at each step.
 * A listener only creates a bridge when modules are configured, so without modules
 * the SMTP path does no extra work at all.
 *
 * Metadata and header fields set in session hooks (connect, ehlo, startTls, auth)
 * belong to the session and are copied into every transaction; those set from
 * mailFrom on belong to the transaction and go into its queue record.
 *
 * @example
 * ```ts
 * const bridge = createSmtpBridge(host, { listener: "mx", spool });
 * const refusal = await bridge.rcptTo(session, address); // SmtpError | null
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { SMTPServerAddress, SMTPServerSession } from "smtp-server";
import type { QueueRecord } from "../queue/mod.ts";
import type { SmtpError } from "../smtp/errors.ts";
import type { IntakeEnvelope, QueueHook } from "../smtp/intake.ts";
import type { Spool } from "../spool/mod.ts";
import { formatHeader } from "./headers.ts";
import type { ContextFor, LoadedModule, ModuleHost } from "./host.ts";
import { openMessage } from "./message.ts";
import { insertHeaders } from "./rewrite.ts";
import type { Context, EventHook, HookName, SessionInfo, ValidationHook } from "./types.ts";
import { tempfailReply } from "./verdict.ts";

type Meta = Record<string, Record<string, unknown>>;

interface Transaction {
  sender?: string;
  meta: Meta;
  headers: string[];
  /** Fields added by the data hook (need a rewrite of the stored message). */
  late: string[];
  messageId?: string;
  /** Fixed at DATA (the session's envelope is reset after the message). */
  recipients?: string[];
}

interface SessionState {
  session: SMTPServerSession;
  meta: Meta;
  headers: string[];
  tx?: Transaction;
  /** Event hooks of one session run one after another, in order. */
  events: Promise<void>;
}

/** The calls a listener makes; every promise resolves (module failures are already handled). */
export interface SmtpBridge {
  /** New connection: connectionOpened (event) and connect (validation). */
  connect(session: SMTPServerSession): Promise<SmtpError | null>;
  closed(session: SMTPServerSession): void;
  /** Wraps an smtp-server connection's EHLO/HELO/STARTTLS handlers when modules have those hooks. */
  instrument(conn: object): void;
  auth(session: SMTPServerSession, method: string, username: string): Promise<SmtpError | null>;
  mailFrom(session: SMTPServerSession, address: SMTPServerAddress): Promise<SmtpError | null>;
  rcptTo(session: SMTPServerSession, address: SMTPServerAddress): Promise<SmtpError | null>;
  /**
   * Before intake: adds the transaction's header fields and metadata to the envelope; when
   * modules have a `data` hook, returns the hook to run before queueing (it reads the stored file).
   */
  intake(session: SMTPServerSession, envelope: IntakeEnvelope): QueueHook | undefined;
  received(session: SMTPServerSession, record: QueueRecord): void;
  smtpError(session: SMTPServerSession, code: number, reply: unknown): void;
}

const SESSION_HOOKS = new Set<HookName>(["connect", "ehlo", "startTls", "auth", "connectionOpened"]);

/** Creates the bridge for one listener. */
export function createSmtpBridge(
  host: ModuleHost,
  deps: { listener: string; spool: Spool; log: Logger },
): SmtpBridge {
  const states = new WeakMap<SMTPServerSession, SessionState>();
  const byName = new Map(host.modules.map((m) => [m.name, m]));

  const stateOf = (session: SMTPServerSession): SessionState => {
    let state = states.get(session);
    if (!state) {
      state = { session, meta: {}, headers: [], events: Promise.resolve() };
      states.set(session, state);
    }
    return state;
  };

  const sessionInfo = (s: SMTPServerSession): SessionInfo => {
    const cipher = s.tlsOptions as { name?: string; standardName?: string; version?: string } | false | undefined;
    return {
      id: s.id,
      listener: deps.listener,
      remote: { address: s.remoteAddress, port: s.remotePort },
      helo: s.hostNameAppearsAs || undefined,
      tls: s.secure && cipher ? { version: cipher.version, cipher: cipher.standardName ?? cipher.name } : undefined,
      user: typeof s.user === "string" ? s.user : undefined,
    };
  };

  /** The context factory for one call: metadata and header fields go to the session or the transaction. */
  const contextFor = (state: SessionState, tx: Transaction | undefined, late = false): ContextFor => {
    return (m: LoadedModule, signal: AbortSignal, hook: HookName): Context => {
      const inSession = SESSION_HOOKS.has(hook) || !tx;
      const meta = inSession ? state.meta : tx!.meta;
      const headers = inSession ? state.headers : late ? tx!.late : tx!.headers;
      const canAddHeader = hook === "connect" || hook === "ehlo" || hook === "startTls" || hook === "auth" ||
        hook === "mailFrom" || hook === "rcptTo" || hook === "data";
      return {
        hook,
        module: m.name,
        signal,
        get session() {
          return sessionInfo(state.session);
        },
        get envelope() {
          const env = state.session.envelope;
          return {
            sender: tx?.sender,
            recipients: tx?.recipients ?? (env?.rcptTo ?? []).map((r) => r.address),
          };
        },
        messageId: tx?.messageId,
        get metadata() {
          return meta[m.name] ??= {};
        },
        addHeader(name: string, value: string) {
          if (!canAddHeader) throw new TypeError(`addHeader is not available in ${hook}`);
          headers.push(formatHeader(name, value));
        },
      };
    };
  };

  const safe = (work: Promise<SmtpError | null>, hook: ValidationHook) =>
    work.catch((err) => {
      deps.log.error("module dispatch failed in {hook}: {error}", { hook, error: (err as Error).message });
      return tempfailReply(hook);
    });

  const event = (state: SessionState, hook: EventHook, tx: Transaction | undefined, args?: unknown) => {
    if (!host.has(hook)) return;
    const ctx = contextFor(state, tx);
    state.events = state.events.then(() => host.notify(hook, ctx, args)).catch(() => {});
  };

  const params = (a: SMTPServerAddress) => {
    const out: Record<string, string | true> = {};
    if (a.args) { for (const [k, v] of Object.entries(a.args)) out[k.toUpperCase()] = v === true ? true : String(v); }
    return out;
  };

  /** JSON copy of the metadata to store, without empty namespaces; a module whose data cannot be stored fails. */
  const snapshot = (meta: Meta): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(meta)) {
      if (Object.keys(value).length === 0) continue;
      try {
        out[name] = JSON.parse(JSON.stringify(value));
      } catch (err) {
        const m = byName.get(name);
        deps.log.error("module {module} metadata cannot be stored as JSON: {error}; on_error = {onError}", {
          module: name,
          error: (err as Error).message,
          onError: m?.onError,
        });
        if (m?.onError !== "accept") throw tempfailReply("data");
      }
    }
    return out;
  };

  return {
    connect(session) {
      const state = stateOf(session);
      event(state, "connectionOpened", undefined);
      if (!host.has("connect")) return Promise.resolve(null);
      return safe(host.validate("connect", contextFor(state, undefined)), "connect");
    },
    closed(session) {
      const state = states.get(session);
      if (!state) return;
      event(state, "connectionClosed", state.tx);
      states.delete(session);
    },
    instrument(conn) {
      type Handler = (command: unknown, callback: () => void) => void;
      const c = conn as Record<string, unknown> & {
        session: SMTPServerSession;
        secure?: boolean;
        send(code: number, data: string): void;
      };
      const wrap = (
        command: string,
        hook: ValidationHook,
        argsOf: (line: string) => unknown | undefined,
      ) => {
        const original = c[`handler_${command}`] as Handler;
        c[`handler_${command}`] = (line: unknown, callback: () => void) => {
          const args = argsOf(String(line ?? ""));
          if (args === undefined) return original.call(c, line, callback);
          const state = stateOf(c.session);
          state.tx = undefined; // EHLO, HELO and STARTTLS reset the transaction
          safe(host.validate(hook, contextFor(state, undefined), args), hook).then((refusal) => {
            if (!refusal) return original.call(c, line, callback);
            c.send(refusal.responseCode, refusal.message);
            callback();
          });
        };
      };
      const ehloArgs = (esmtp: boolean) => (line: string) => {
        const parts = line.trim().split(/\s+/);
        return parts.length === 2 ? { name: parts[1], esmtp } : undefined;
      };
      if (host.has("ehlo")) {
        wrap("EHLO", "ehlo", ehloArgs(true));
        wrap("HELO", "ehlo", ehloArgs(false));
      }
      if (host.has("startTls")) {
        wrap("STARTTLS", "startTls", (line) => line.trim().split(/\s+/).length === 1 && !c.secure ? {} : undefined);
      }
    },
    auth(session, method, username) {
      if (!host.has("auth")) return Promise.resolve(null);
      const state = stateOf(session);
      return safe(host.validate("auth", contextFor(state, undefined), { method, username }), "auth");
    },
    mailFrom(session, address) {
      const state = stateOf(session);
      // A new transaction starts from the session's metadata and header fields.
      const tx: Transaction = {
        sender: address.address,
        meta: structuredClone(state.meta),
        headers: [...state.headers],
        late: [],
      };
      state.tx = tx;
      if (!host.has("mailFrom")) return Promise.resolve(null);
      const args = { address: address.address, params: params(address) };
      return safe(host.validate("mailFrom", contextFor(state, tx), args), "mailFrom");
    },
    rcptTo(session, address) {
      if (!host.has("rcptTo")) return Promise.resolve(null);
      const state = stateOf(session);
      const args = { address: address.address, params: params(address) };
      return safe(host.validate("rcptTo", contextFor(state, state.tx), args), "rcptTo");
    },
    intake(session, envelope) {
      const state = stateOf(session);
      const tx = state.tx ??= { sender: envelope.sender, meta: structuredClone(state.meta), headers: [], late: [] };
      tx.recipients = envelope.recipients.map((r) => r.address);
      if (tx.headers.length > 0) envelope.headers = tx.headers.join("");
      if (!host.has("data")) {
        // Nothing can change the metadata any more: no hook after intake, and the fast spool path stays.
        try {
          envelope.metadata = snapshot(tx.meta);
          return undefined;
        } catch (err) {
          return () => Promise.reject(err);
        }
      }
      return async ({ id, path, size }) => {
        tx.messageId = id;
        const opened = await openMessage(path, id, size);
        let refusal: SmtpError | null;
        try {
          refusal = await safe(host.validate("data", contextFor(state, tx, true), opened.message), "data");
        } finally {
          opened.close();
        }
        if (refusal) throw refusal;
        if (tx.late.length > 0) size = await insertHeaders(deps.spool, id, tx.late.join(""));
        return { metadata: snapshot(tx.meta), size };
      };
    },
    received(session, record) {
      const state = states.get(session);
      if (!state || !host.has("messageReceived")) return;
      const tx = state.tx;
      if (tx) tx.messageId = record.id;
      event(state, "messageReceived", tx, { id: record.id, size: record.size });
    },
    smtpError(session, code, reply) {
      const state = states.get(session);
      if (!state || !host.has("smtpError")) return;
      const text = Array.isArray(reply) ? reply.join(" ") : String(reply ?? "");
      event(state, "smtpError", state.tx, { code, reply: text });
    },
  };
}
