/**
 * Modules in the SMTP session: implements smtp's {@link SessionHooks} over the loaded
 * modules. Keeps per-session state (metadata, added header fields), builds the
 * {@link Context} each hook gets, and turns verdicts into SMTP refusals. The daemon
 * creates it only when modules are configured, so without modules the SMTP path does
 * no extra work at all; hooks no module implements are left out of the object.
 *
 * Metadata and header fields set in session hooks (connect, ehlo, startTls, auth)
 * belong to the session and are copied into every transaction; those set from
 * mailFrom on belong to the transaction and go into its queue record.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { openSpool } from "../spool/store.ts";
 * import { ModuleHost } from "./host.ts";
 * import { reject } from "./verdict.ts";
 * import { createSmtpBridge } from "./smtp_bridge.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const host = new ModuleHost([{
 *   name: "users",
 *   kind: "builtin",
 *   source: "inline",
 *   timeoutMs: 5000,
 *   onError: "tempfail",
 *   hooks: { rcptTo: (_ctx, { address }) => address === "nobody@example.com" ? reject("No such user", 550, "5.1.1") : undefined },
 * }], getLogger(["empath"]));
 * const hooks = createSmtpBridge(host, { spool: await openSpool(dir), log: getLogger(["empath"]) });
 * // passed to createSmtpListener(listenerConfig, { ...deps, hooks }); a listener calls them like this:
 * const session = { id: "s1", listener: "mx", remote: { address: "192.0.2.1", port: 40000 }, helo: "client.example", tls: undefined, user: undefined, recipients: [] };
 * const verdict = await hooks.rcptTo?.(session, { address: "nobody@example.com", params: {} });
 * assert.equal(verdict !== "known" && verdict?.responseCode, 550);
 * await host.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { SmtpError } from "../smtp/errors.ts";
import type { HookSession, SessionHooks } from "../smtp/hooks.ts";
import type { Spool } from "../spool/mod.ts";
import { PRIORITIES, type Priority, PRIORITY_KEY } from "../queue/mod.ts";
import { formatHeader } from "./headers.ts";
import type { ContextFor, LoadedModule, ModuleHost } from "./host.ts";
import { openMessage } from "./message.ts";
import { insertHeaders } from "./rewrite.ts";
import type { AuthResults, Context, EventHook, HookName, SessionInfo, ValidationHook } from "./types.ts";
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
  /** Inbound check results (set before the data hook runs). */
  auth?: AuthResults;
  /** A module called ctx.skipSigning(). */
  skipSigning?: boolean;
}

interface SessionState {
  session: HookSession;
  meta: Meta;
  headers: string[];
  tx?: Transaction;
  /** Event hooks of one session run one after another, in order. */
  events: Promise<void>;
}

/** What the bridge needs besides the modules. */
export interface SmtpBridgeDeps {
  /** Where `data` hooks' added header fields are written into the stored message. */
  spool: Spool;
  log: Logger;
}

const SESSION_HOOKS = new Set<HookName>(["connect", "ehlo", "startTls", "auth", "connectionOpened"]);

/** The session hooks that run the modules of `host` (shared by all listeners). */
export function createSmtpBridge(host: ModuleHost, deps: SmtpBridgeDeps): SessionHooks {
  const states = new WeakMap<HookSession, SessionState>();
  const byName = new Map(host.modules.map((m) => [m.name, m]));

  const stateOf = (session: HookSession): SessionState => {
    let state = states.get(session);
    if (!state) {
      state = { session, meta: {}, headers: [], events: Promise.resolve() };
      states.set(session, state);
    }
    return state;
  };

  const sessionInfo = (s: HookSession): SessionInfo => ({
    id: s.id,
    listener: s.listener,
    remote: s.remote,
    helo: s.helo,
    tls: s.tls,
    user: s.user,
  });

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
          return { sender: tx?.sender, recipients: tx?.recipients ?? state.session.recipients };
        },
        messageId: tx?.messageId,
        get priority() {
          return meta[PRIORITY_KEY]?.level as Priority | undefined;
        },
        set priority(level: Priority | undefined) {
          if (level !== undefined && !PRIORITIES.includes(level)) {
            throw new TypeError(`priority must be one of ${PRIORITIES.join(", ")}`);
          }
          if (level === undefined) delete meta[PRIORITY_KEY];
          else meta[PRIORITY_KEY] = { level };
        },
        get metadata() {
          return meta[m.name] ??= {};
        },
        addHeader(name: string, value: string) {
          if (!canAddHeader) throw new TypeError(`addHeader is not available in ${hook}`);
          headers.push(formatHeader(name, value));
        },
        get auth() {
          return tx?.auth;
        },
        skipSigning() {
          if (!tx || !canAddHeader) throw new TypeError(`skipSigning is not available in ${hook}`);
          tx.skipSigning = true;
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

  /** Runs a validation hook of the modules (when any module has it) for a session step. */
  const validate = (hook: ValidationHook, state: SessionState, tx: Transaction | undefined, args?: unknown) =>
    host.has(hook) ? safe(host.validate(hook, contextFor(state, tx), args), hook) : Promise.resolve(null);
  /** EHLO, HELO and STARTTLS reset the transaction. */
  const restart = (session: HookSession) => {
    const state = stateOf(session);
    state.tx = undefined;
    return state;
  };

  const hooks: SessionHooks = {
    connect(session) {
      const state = stateOf(session);
      event(state, "connectionOpened", undefined);
      return validate("connect", state, undefined);
    },
    closed(session) {
      const state = states.get(session);
      if (!state) return;
      event(state, "connectionClosed", state.tx);
      states.delete(session);
    },
    mailFrom(session, sender) {
      const state = stateOf(session);
      // A new transaction starts from the session's metadata and header fields.
      const tx: Transaction = {
        sender: sender.address,
        meta: structuredClone(state.meta),
        headers: [...state.headers],
        late: [],
      };
      state.tx = tx;
      return validate("mailFrom", state, tx, sender);
    },
    data(session, envelope) {
      const state = stateOf(session);
      const tx = state.tx ??= { sender: envelope.sender, meta: structuredClone(state.meta), headers: [], late: [] };
      tx.recipients = envelope.recipients;
      const headers = tx.headers.length > 0 ? tx.headers.join("") : undefined;
      if (!host.has("data")) {
        // Nothing can change the metadata any more: no hook after intake, and the fast spool path stays.
        try {
          return { headers, metadata: snapshot(tx.meta), skipSigning: tx.skipSigning };
        } catch (err) {
          return { headers, beforeQueue: () => Promise.reject(err) };
        }
      }
      return {
        headers,
        beforeQueue: async ({ id, path, size, auth }) => {
          tx.messageId = id;
          tx.auth = auth as AuthResults | undefined;
          const opened = await openMessage(path, id, size);
          let refusal: SmtpError | null;
          try {
            refusal = await safe(host.validate("data", contextFor(state, tx, true), opened.message), "data");
          } finally {
            opened.close();
          }
          if (refusal) throw refusal;
          if (tx.late.length > 0) size = await insertHeaders(deps.spool, id, tx.late.join(""));
          return { metadata: snapshot(tx.meta), size, skipSigning: tx.skipSigning };
        },
      };
    },
  };
  if (host.has("ehlo")) hooks.helo = (session, args) => validate("ehlo", restart(session), undefined, args);
  if (host.has("startTls")) hooks.startTls = (session) => validate("startTls", restart(session), undefined, {});
  if (host.has("auth")) hooks.auth = (session, args) => validate("auth", stateOf(session), undefined, args);
  if (host.has("rcptTo")) {
    hooks.rcptTo = (session, rcpt) => {
      const state = stateOf(session);
      const explicit = { accepted: false };
      const ctx = contextFor(state, state.tx);
      return safe(host.validate("rcptTo", ctx, rcpt, explicit), "rcptTo")
        .then((refusal) => refusal ?? (explicit.accepted ? "known" : null));
    };
  }
  if (host.has("messageReceived")) {
    hooks.queued = (session, record) => {
      const state = states.get(session);
      if (!state) return;
      const tx = state.tx;
      if (tx) tx.messageId = record.id;
      event(state, "messageReceived", tx, { id: record.id, size: record.size });
    };
  }
  if (host.has("smtpError")) {
    hooks.error = (session, code, reply) => {
      const state = states.get(session);
      if (state) event(state, "smtpError", state.tx, { code, reply });
    };
  }
  return hooks;
}
