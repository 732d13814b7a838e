/**
 * One SMTP listener (role mx, submission or smtps) on npm:smtp-server, wired to
 * the relay policy, AUTH users, the intake and per-session limits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { parseConfig } from "../config/load.ts";
 * import { openFileStore } from "../queue/file_store.ts";
 * import { createSubmitter } from "../queue/submit.ts";
 * import { openSpool } from "../spool/store.ts";
 * import { createSmtpListener } from "./server.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const config = parseConfig('[[listeners]]\naddress = "127.0.0.1:0"\n', "config.toml");
 * const [spool, store] = [await openSpool(`${dir}/spool`), await openFileStore(`${dir}/queue`)];
 * const deps = { config: () => config, spool, submitter: createSubmitter({ store, spool }), hostname: "mx.example", log: getLogger(["empath"]) };
 * const listener = createSmtpListener(config.listeners[0]!, deps);
 * const { port } = await listener.listen();
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * const greeting = new Uint8Array(512);
 * const n = await conn.read(greeting);
 * assert.match(new TextDecoder().decode(greeting.subarray(0, n ?? 0)), /^220 mx\.example/);
 * conn.close();
 * await listener.close(30_000);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type net from "node:net";
import type { Logger } from "@logtape/logtape";
import type { SMTPServerOptions } from "smtp-server";
import type { Config, ListenerConfig } from "../config/mod.ts";
import type { Metrics } from "../observability/metrics.ts";
import { endSpan, type Span, startSpan } from "../observability/tracing.ts";
import type { Submitter } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";
import { parseNetworks } from "../util/cidr.ts";
import { AuthThrottle } from "./auth_throttle.ts";
import { checkMailParams, checkRcptParams } from "./envelope_checks.ts";
import { reject, SmtpError } from "./errors.ts";
import type { HookVerdict, SessionHooks } from "./hooks.ts";
import { receiveMessage } from "./intake.ts";
import { createRelayPolicy, type RelayPolicy } from "./policy.ts";
import { createProxyListener } from "./proxy_listener.ts";
import { envelopeOf, hookAddress, hookSession } from "./session_facts.ts";
import { createSessionRegistry, type SessionInfo } from "./session_registry.ts";
import { createSmtpServer, guardImplicitTls, type SessionSetup } from "./session_setup.ts";
import { socketOf } from "./smtp_server_private.ts";
import type { TlsFiles } from "./tls.ts";
import { AuthBusyError, type UserDb } from "./users.ts";
import { gateRecipient, gateSender, validateLocalRecipient } from "./envelope_gate.ts";
import type { RecipientCheck } from "./recipient_check.ts";
import type { SenderDomainLookup } from "./sender_checks.ts";
import { traceLogger } from "./trace_logger.ts";
import type { SmtpTrace } from "../observability/mod.ts";
import type { MessageAuth } from "./message_auth.ts";

/** What a listener needs from the daemon. */
export interface ListenerDeps {
  config: () => Config;
  spool: Spool;
  /** The one way into the queue; its "queued" event wakes delivery. */
  submitter: Submitter;
  hostname: string;
  users?: UserDb;
  tls?: TlsFiles;
  log: Logger;
  metrics?: Metrics;
  /** Session hooks (the daemon passes the module bridge); without them the SMTP path does no hook work at all. */
  hooks?: SessionHooks;
  /** AUTH failure accounting shared by all listeners (per-address lockout); a listener makes its own without. */
  authThrottle?: AuthThrottle;
  /** Recipient validation for local domains (`[recipients]`), current for the running config. */
  recipientCheck?: () => RecipientCheck | undefined;
  /** DNS check of outside senders' domains (relay.reject_unknown_sender_domain). */
  senderDomainLookup?: SenderDomainLookup;
  /** Live SMTP tracing (`empathctl trace smtp`). */
  trace?: SmtpTrace;
  /** Inbound checks and DKIM signing (`[auth]`, `[dkim]`), current for the running config; see message_auth.ts. */
  messageAuth?: () => MessageAuth | undefined;
}

/** A running listener. */
export interface SmtpListener {
  readonly name: string;
  readonly role: ListenerConfig["role"];
  listen(): Promise<{ host: string; port: number }>;
  /** Stops accepting, lets sessions in DATA finish (up to graceMs), 421s the rest. */
  close(graceMs: number): Promise<void>;
  sessions(): SessionInfo[];
  /** Ends a session now (421, then closed); false when this listener has no such session. */
  kill(id: string): boolean;
  updateTls(files: TlsFiles): void;
}

const policies = new WeakMap<Config, RelayPolicy>();
/** The relay policy of a config object, compiled once per config (reloads make a new object). */
function policyFor(config: Config): RelayPolicy {
  let policy = policies.get(config);
  if (!policy) policies.set(config, policy = createRelayPolicy(config.relay));
  return policy;
}

const INVALID_UTF8 = "\uFFFD";

const peerOf = (conn: { session: { remoteAddress: string; remotePort: number } } | undefined) =>
  conn && `${conn.session.remoteAddress}:${conn.session.remotePort}`;

/** The client as the relay policy sees it. */
function clientOf(session: { remoteAddress: string; user?: unknown }) {
  return { address: session.remoteAddress, authenticated: !!session.user };
}

/** Creates (but does not start) a listener. */
export function createSmtpListener(listener: ListenerConfig, deps: ListenerDeps): SmtpListener {
  const name = listener.name ?? `${listener.role}@${listener.address.host}:${listener.address.port}`;
  const log = deps.log;
  const registry = createSessionRegistry(name);
  const spans = new Map<string, Span>();
  /** Failed AUTH attempts per session id. */
  const authFailures = new Map<string, number>();
  const authThrottle = deps.authThrottle ?? new AuthThrottle();
  let closing = false;
  const cfg = () => deps.config();
  const submission = listener.role !== "mx";
  const secure = listener.role === "smtps";
  const hasTls = !!deps.tls;
  const proxyNets = parseNetworks(listener.proxy_protocol);
  const hooks = deps.hooks;
  /** Answers `cb` with a hook's verdict (a refusal, or go-ahead). */
  const answer = (verdict: Promise<HookVerdict>, cb: (err?: SmtpError) => void) =>
    void verdict.then((refusal) => cb(refusal ?? undefined));

  const options: SMTPServerOptions = {
    name: deps.hostname,
    banner: cfg().smtp.banner,
    size: cfg().smtp.max_message_size,
    authMethods: ["PLAIN", "LOGIN"],
    authOptional: !submission,
    disabledCommands: [...(submission ? [] : ["AUTH"]), ...(hasTls && !secure ? [] : ["STARTTLS"])],
    hideSTARTTLS: !hasTls || secure,
    secure,
    key: deps.tls?.key,
    cert: deps.tls?.cert,
    allowInsecureAuth: false,
    disableReverseLookup: true,
    maxClients: cfg().smtp.max_connections,
    socketTimeout: cfg().smtp.timeouts.command,
    closeTimeout: 1000,
    hideDSN: false,
    hideENHANCEDSTATUSCODES: false,
    // RFC 8689: offered on listeners with TLS; smtp-server shows it (and takes it) only once the session is secure.
    hideREQUIRETLS: !hasTls && !secure,
    maxRecipients: cfg().smtp.max_recipients,
    logger: deps.trace ? traceLogger(deps.trace, (id) => peerOf(registry.get(id))) : false,
    onConnect(session, cb) {
      const ip = session.remoteAddress;
      spans.set(session.id, startSpan("smtp.session", { "net.peer.ip": ip, "empath.listener": name }));
      deps.metrics?.smtpConnections.inc({ listener: name });
      deps.metrics?.smtpActive.inc({ listener: name });
      const n = registry.opened(session);
      if (closing) return cb(reject(421, "4.3.2", "Service shutting down, try again later"));
      if (n > cfg().smtp.max_connections_per_ip) {
        log.info("refused {peer}: too many connections from this address", { peer: ip });
        return cb(reject(421, "4.7.0", `Too many connections from ${ip}, try again later`));
      }
      if (hooks?.connect) return answer(hooks.connect(hookSession(session, name)), cb);
      cb();
    },
    onClose(session) {
      const counted = registry.closed(session);
      authFailures.delete(session.id);
      hooks?.closed?.(hookSession(session, name));
      const span = spans.get(session.id);
      if (span) {
        spans.delete(session.id);
        endSpan(span, undefined, { "empath.tls": !!session.secure, "empath.transactions": session.transaction });
      }
      if (counted) deps.metrics?.smtpActive.dec({ listener: name });
    },
    onAuth(auth, session, cb) {
      const users = deps.users;
      const limits = cfg().smtp.auth;
      const peer = session.remoteAddress;
      // A client address with too many recent failures is refused before its password is looked at.
      const locked = authThrottle.admit(peer, limits);
      if (locked) {
        deps.metrics?.authFailures.inc({ reason: "locked_out" });
        log.warning("AUTH refused for {user} from {peer}: {failures} failed attempts from this address recently", {
          user: auth.username,
          peer,
          failures: authThrottle.recentFailures(peer, limits),
        });
        return cb(locked);
      }
      // Slow down guessing: each failure in the session waits longer for its 535; the last one ends the session.
      const fail = () => {
        const n = (authFailures.get(session.id) ?? 0) + 1;
        authFailures.set(session.id, n);
        const verdict = authThrottle.fail(peer, n, limits);
        deps.metrics?.authFailures.inc({ reason: "credentials" });
        log.warning("AUTH failed for {user} from {peer} ({n} of {max} in this session)", {
          user: auth.username,
          peer,
          n,
          max: limits.max_failures,
        });
        const reply = () => {
          cb(reject(535, "5.7.8", "Authentication credentials invalid"));
          if (verdict.closeSession) {
            registry.get(session.id)?.send(421, "4.7.0 Too many failed authentication attempts, closing connection");
          }
        };
        if (verdict.delayMs <= 0) return reply();
        const timer = setTimeout(reply, verdict.delayMs);
        Deno.unrefTimer(timer as unknown as number); // never holds up shutdown
      };
      const username = auth.username;
      if (!users || auth.method === "XOAUTH2" || !username) return fail();
      // Counted against the lockout while it is hashed, so a burst of parallel guesses cannot all get through.
      const checked = authThrottle.begin(peer);
      users.verify(username, auth.password ?? "").then((ok) => {
        checked();
        if (!ok) return fail();
        const done = (refusal: HookVerdict) => {
          if (refusal) return cb(refusal);
          log.info("session {session} authenticated as {user}", { session: session.id, user: username });
          cb(null, { user: username });
        };
        if (!hooks?.auth) return done(null);
        hooks.auth(hookSession(session, name), { method: auth.method, username }).then(done);
      }, (err) => {
        checked();
        if (!(err instanceof AuthBusyError)) return fail();
        deps.metrics?.authFailures.inc({ reason: "busy" });
        log.warning("AUTH from {peer} refused: too many password checks in progress", { peer });
        cb(reject(454, "4.7.0", "Too many authentication attempts in progress, try again later", "AUTH_BUSY"));
      });
    },
    onMailFrom(address, session, cb) {
      if (closing) return cb(reject(421, "4.3.2", "Service shutting down, try again later"));
      if (address.address.includes(INVALID_UTF8)) {
        return cb(reject(501, "5.6.7", "Sender address is not valid UTF-8"));
      }
      const bad = checkMailParams(address.args, { requireTls: (hasTls || secure) && !!session.secure });
      if (bad) return cb(bad);
      const c = cfg();
      const lookup = c.relay.reject_unknown_sender_domain ? deps.senderDomainLookup : undefined;
      void gateSender(address, { policy: policyFor(c), client: clientOf(session), lookup }).then((refusal) => {
        if (refusal) {
          log.info("rejected MAIL FROM <{sender}> from {peer}: {reason}", {
            sender: address.address,
            peer: session.remoteAddress,
            reason: refusal.message,
          });
          return cb(refusal);
        }
        const proceed = () => {
          if (hooks?.mailFrom) return answer(hooks.mailFrom(hookSession(session, name), hookAddress(address)), cb);
          cb();
        };
        // SPF at MAIL FROM (mx listeners, outside clients), so a configured rejection happens here.
        const spf = !submission && !policyFor(c).mayRelay(clientOf(session))
          ? deps.messageAuth?.()?.checkSender
          : undefined;
        if (!spf) return proceed();
        void spf({ ip: session.remoteAddress, helo: session.hostNameAppearsAs, sender: address.address })
          .then((refusal) => {
            if (!refusal) return proceed();
            log.info("rejected MAIL FROM <{sender}> from {peer}: {reason}", {
              sender: address.address,
              peer: session.remoteAddress,
              reason: refusal.message,
            });
            cb(refusal);
          });
      });
    },
    onRcptTo(address, session, cb) {
      if (address.address.includes(INVALID_UTF8)) {
        return cb(reject(501, "5.6.7", "Recipient address is not valid UTF-8"));
      }
      const bad = checkRcptParams(address.args);
      if (bad) return cb(bad);
      const policy = policyFor(cfg());
      const refused = (refusal: SmtpError) => {
        log.info("rejected RCPT {rcpt} from {peer}: {reason}", {
          rcpt: address.address,
          peer: session.remoteAddress,
          reason: refusal.message,
        });
        cb(refusal);
      };
      const denied = gateRecipient(address, policy, clientOf(session));
      if (denied) return refused(denied);
      const verdict = hooks?.rcptTo
        ? hooks.rcptTo(hookSession(session, name), hookAddress(address))
        : Promise.resolve(null);
      void verdict.then(async (v) => {
        if (v && v !== "known") return cb(v);
        const unknown = await validateLocalRecipient(address.address, policy, deps.recipientCheck?.(), v === "known");
        return unknown ? refused(unknown) : cb();
      });
    },
    onData(stream, session, cb) {
      const conn = registry.get(session.id);
      const socket = conn && socketOf(conn);
      socket?.setTimeout(cfg().smtp.timeouts.data_block);
      const c = cfg();
      const envelope = envelopeOf(session, name, submission);
      envelope.client.trusted = policyFor(c).mayRelay(clientOf(session));
      const auth = deps.messageAuth?.();
      const plan = hooks?.data?.(hookSession(session, name), {
        sender: envelope.sender,
        recipients: envelope.recipients.map((r) => r.address),
      });
      if (plan?.headers) envelope.headers = plan.headers;
      if (plan?.metadata) envelope.metadata = plan.metadata;
      const span = startSpan("smtp.message", {
        "empath.listener": name,
        "empath.sender": envelope.sender,
        "empath.recipients": envelope.recipients.length,
      });
      const work = receiveMessage(stream, envelope, {
        spool: deps.spool,
        submitter: deps.submitter,
        hostname: deps.hostname,
        maxLineLength: c.smtp.max_line_length,
        bareNewline: c.smtp.bare_newline,
        maxReceivedHeaders: c.smtp.max_received_headers,
        maxHeaderBytes: c.smtp.max_header_size,
        beforeQueue: plan?.beforeQueue,
        // Outside mail on mx is checked; submitted and relayed mail is signed (see message_auth.ts).
        verify: !submission && !envelope.client.trusted ? auth?.verify : undefined,
        sign: (submission || envelope.client.trusted) && !plan?.skipSigning ? auth?.sign : undefined,
      }).then((record) => {
        log.info("queued {id} from=<{from}> size={size} nrcpt={nrcpt} peer={peer}", {
          id: record.id,
          from: record.sender,
          size: record.size,
          nrcpt: record.recipients.length,
          peer: session.remoteAddress,
        });
        endSpan(span, undefined, { "empath.message_id": record.id, "empath.size": record.size });
        cb(null, `2.0.0 Ok: queued as ${record.id}`);
        hooks?.queued?.(hookSession(session, name), record);
      }, (err: Error) => {
        const smtp = err instanceof SmtpError ? err : reject(451, "4.3.0", "Local error in processing");
        endSpan(span, smtp, { "empath.reply_code": smtp.responseCode });
        log.warning("message from {peer} not accepted: {reason}", {
          peer: session.remoteAddress,
          reason: smtp.message,
        });
        cb(smtp);
      }).finally(() => {
        socket?.setTimeout(cfg().smtp.timeouts.command);
      });
      registry.track(work);
    },
  };

  const setup: SessionSetup = {
    listener: name,
    registry,
    log,
    settings: () => cfg().smtp,
    hooks,
    onErrorReply: (_conn, code) => deps.metrics?.smtpRejections.inc({ code: String(code) }),
    onTlsFailure: (reason) => deps.metrics?.tlsFailures.inc({ direction: "inbound", reason }),
  };
  const server = createSmtpServer(options, setup);
  server.on("error", (err: Error) => log.debug("listener {name} socket error: {error}", { name, error: err.message }));
  server.server.on("connection", (s: net.Socket) => {
    s.setNoDelay(true);
    if (secure) guardImplicitTls(s, setup);
  });

  // PROXY protocol: our own accept path reads a v1/v2 header from trusted peers.
  const proxyServer = proxyNets.length > 0
    ? createProxyListener({
      server,
      networks: proxyNets,
      secure,
      handshakeMs: () => cfg().smtp.timeouts.handshake,
      log,
      name,
    })
    : undefined;

  return {
    name,
    role: listener.role,
    listen() {
      const target = proxyServer ?? server.server;
      return new Promise((resolve, reject) => {
        target.once("error", reject);
        target.listen(listener.address.port, listener.address.host, () => {
          target.off("error", reject);
          const addr = target.address() as net.AddressInfo;
          resolve({ host: addr.address, port: addr.port });
        });
      });
    },
    async close(graceMs) {
      closing = true;
      const target = proxyServer ?? server.server;
      // close() only stops accepting here: its callback would wait for every session to end.
      const closed = new Promise<void>((resolve) => target.close(() => resolve()));
      await registry.shutdown(graceMs);
      await closed;
    },
    sessions() {
      return registry.sessions();
    },
    kill(id) {
      const conn = registry.get(id);
      if (!conn) return false;
      conn.send(421, "4.7.0 Session ended by the administrator"); // a 421 closes the connection
      return true;
    },
    updateTls(files) {
      server.updateSecureContext({ key: files.key, cert: files.cert });
    },
  };
}
