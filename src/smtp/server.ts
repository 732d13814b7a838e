/**
 * One SMTP listener (role mx, submission or smtps) on npm:smtp-server, wired to
 * the relay policy, AUTH users, the intake and per-session limits.
 *
 * @example
 * ```ts
 * const listener = createSmtpListener(listenerConfig, deps);
 * const { port } = await listener.listen();
 * await listener.close(30_000);
 * ```
 * @module
 */
import net from "node:net";
import type { Logger } from "@logtape/logtape";
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";
import { SMTPConnection } from "smtp-server/lib/smtp-connection.js";
import type { Config, ListenerConfig } from "../config/mod.ts";
import type { Submitter } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";
import { matchesAny, parseNetworks } from "../util/cidr.ts";
import { AuthThrottle } from "./auth_throttle.ts";
import { type GuardedParser, guardParser } from "./drip_guard.ts";
import { reject, SmtpError } from "./errors.ts";
import { checkMailParams, checkRcptParams } from "./envelope_checks.ts";
import { type IntakeEnvelope, receiveMessage } from "./intake.ts";
import { createRelayPolicy, type RelayPolicy } from "./policy.ts";
import { readProxyHeader } from "./proxy.ts";
import type { TlsFiles } from "./tls.ts";
import { traceLogger } from "./trace_logger.ts";
import type { SmtpTrace } from "../observability/mod.ts";
import type { UserDb } from "./users.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { ModuleHost } from "../modules/host.ts";
import { createSmtpBridge } from "../modules/smtp_bridge.ts";
import { endSpan, type Span, startSpan } from "../observability/tracing.ts";

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
  /** Loaded modules; without any, the SMTP path does no module work at all. */
  modules?: ModuleHost;
  /** AUTH failure accounting shared by all listeners (per-address lockout); a listener makes its own without. */
  authThrottle?: AuthThrottle;
  /** Live SMTP tracing (`empathctl trace smtp`). */
  trace?: SmtpTrace;
}

/** An active session, as shown by `empathctl smtp connections`. */
export interface SessionInfo {
  id: string;
  listener: string;
  peer: string;
  state: "connected" | "ehlo" | "mail" | "rcpt" | "data";
  tls: boolean;
  /** The name the client gave in HELO/EHLO. */
  helo?: string;
  /** TLS protocol version and cipher, once TLS is up. */
  tlsVersion?: string;
  tlsCipher?: string;
  user?: string;
  startedAt: number;
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

type SendFn = (code: number, data?: string | string[] | null, context?: string | false) => void;
type Conn = Omit<InstanceType<typeof SMTPConnection>, "send"> & {
  _socket: net.Socket;
  _dataStream: unknown;
  session: SMTPServerSession;
  send: SendFn;
};

const policies = new WeakMap<Config, RelayPolicy>();
/** The relay policy of a config object, compiled once per config (reloads make a new object). */
function policyFor(config: Config): RelayPolicy {
  let policy = policies.get(config);
  if (!policy) policies.set(config, policy = createRelayPolicy(config.relay));
  return policy;
}

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
const INVALID_UTF8 = "\uFFFD";

/** Creates (but does not start) a listener. */
export function createSmtpListener(listener: ListenerConfig, deps: ListenerDeps): SmtpListener {
  const name = listener.name ?? `${listener.role}@${listener.address.host}:${listener.address.port}`;
  const log = deps.log;
  const conns = new Map<string, Conn>();
  const spans = new Map<string, Span>();
  const perIp = new Map<string, number>();
  const counted = new Set<string>();
  const inflight = new Set<Promise<unknown>>();
  /** Failed AUTH attempts per session id. */
  const authFailures = new Map<string, number>();
  const authThrottle = deps.authThrottle ?? new AuthThrottle();
  let closing = false;
  const cfg = () => deps.config();
  const submission = listener.role !== "mx";
  const secure = listener.role === "smtps";
  const hasTls = !!deps.tls;
  const proxyNets = parseNetworks(listener.proxy_protocol);
  const mods = deps.modules?.modules.length
    ? createSmtpBridge(deps.modules, { listener: name, spool: deps.spool, log })
    : undefined;

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
    hideREQUIRETLS: true,
    maxRecipients: cfg().smtp.max_recipients,
    logger: deps.trace ? traceLogger(deps.trace, (cid) => peerOf(conns.get(cid))) : false,
    onConnect(session, cb) {
      const ip = session.remoteAddress;
      counted.add(session.id);
      spans.set(session.id, startSpan("smtp.session", { "net.peer.ip": ip, "empath.listener": name }));
      deps.metrics?.smtpConnections.inc({ listener: name });
      deps.metrics?.smtpActive.inc({ listener: name });
      const n = (perIp.get(ip) ?? 0) + 1;
      perIp.set(ip, n);
      if (closing) return cb(reject(421, "4.3.2", "Service shutting down, try again later"));
      if (n > cfg().smtp.max_connections_per_ip) {
        log.info("refused {peer}: too many connections from this address", { peer: ip });
        return cb(reject(421, "4.7.0", `Too many connections from ${ip}, try again later`));
      }
      if (mods) return void mods.connect(session).then((refusal) => cb(refusal ?? undefined));
      cb();
    },
    onClose(session) {
      conns.delete(session.id);
      authFailures.delete(session.id);
      mods?.closed(session);
      const span = spans.get(session.id);
      if (span) {
        spans.delete(session.id);
        endSpan(span, undefined, { "empath.tls": !!session.secure, "empath.transactions": session.transaction });
      }
      if (counted.delete(session.id)) {
        deps.metrics?.smtpActive.dec({ listener: name });
        const n = (perIp.get(session.remoteAddress) ?? 1) - 1;
        if (n <= 0) perIp.delete(session.remoteAddress);
        else perIp.set(session.remoteAddress, n);
      }
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
            conns.get(session.id)?.send(421, "4.7.0 Too many failed authentication attempts, closing connection");
          }
        };
        if (verdict.delayMs <= 0) return reply();
        const timer = setTimeout(reply, verdict.delayMs);
        Deno.unrefTimer(timer as unknown as number); // never holds up shutdown
      };
      if (!users || auth.method === "XOAUTH2" || !auth.username) return fail();
      users.verify(auth.username, auth.password ?? "").then((ok) => {
        if (!ok) return fail();
        const done = (refusal: SmtpError | null) => {
          if (refusal) return cb(refusal);
          log.info("session {session} authenticated as {user}", { session: session.id, user: auth.username });
          cb(null, { user: auth.username });
        };
        return mods ? void mods.auth(session, auth.method, auth.username!).then(done) : done(null);
      }, () => fail());
    },
    onMailFrom(address, session, cb) {
      if (closing) return cb(reject(421, "4.3.2", "Service shutting down, try again later"));
      if (address.address.includes(INVALID_UTF8)) {
        return cb(reject(501, "5.6.7", "Sender address is not valid UTF-8"));
      }
      const bad = checkMailParams(address.args);
      if (bad) return cb(bad);
      if (mods) return void mods.mailFrom(session, address).then((refusal) => cb(refusal ?? undefined));
      cb();
    },
    onRcptTo(address, session, cb) {
      if (address.address.includes(INVALID_UTF8)) {
        return cb(reject(501, "5.6.7", "Recipient address is not valid UTF-8"));
      }
      const bad = checkRcptParams(address.args);
      if (bad) return cb(bad);
      const policy = policyFor(cfg());
      // smtp-server stores this very object as the recipient: a domainless postmaster gets its domain here.
      address.address = policy.resolveRecipient(address.address);
      const denied = policy.checkRecipient(address.address, {
        address: session.remoteAddress,
        authenticated: !!session.user,
      });
      if (denied) {
        log.info("rejected RCPT {rcpt} from {peer}: {reason}", {
          rcpt: address.address,
          peer: session.remoteAddress,
          reason: denied.message,
        });
      }
      if (denied || !mods) return cb(denied ?? undefined);
      mods.rcptTo(session, address).then((refusal) => cb(refusal ?? undefined));
    },
    onData(stream, session, cb) {
      const conn = conns.get(session.id);
      conn?._socket.setTimeout(cfg().smtp.timeouts.data_block);
      const c = cfg();
      const envelope = envelopeOf(session, name, submission);
      const beforeQueue = mods?.intake(session, envelope);
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
        beforeQueue,
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
        mods?.received(session, record);
      }, (err: Error) => {
        const smtp = err instanceof SmtpError ? err : reject(451, "4.3.0", "Local error in processing");
        endSpan(span, smtp, { "empath.reply_code": smtp.responseCode });
        log.warning("message from {peer} not accepted: {reason}", {
          peer: session.remoteAddress,
          reason: smtp.message,
        });
        cb(smtp);
      }).finally(() => {
        conn?._socket.setTimeout(cfg().smtp.timeouts.command);
        inflight.delete(work);
      });
      inflight.add(work);
    },
  };

  /** Per-request deadlines against clients that drip bytes (see drip_guard.ts). */
  function guardConnection(conn: Conn) {
    const internal = conn as unknown as {
      _parser: GuardedParser;
      _createParser(): GuardedParser;
      _closing?: boolean;
      _closed?: boolean;
      remoteAddress?: string;
    };
    const limits = () => {
      const s = cfg().smtp;
      return { command: s.timeouts.command, dataBlock: s.timeouts.data_block, minDataRate: s.min_data_rate };
    };
    const slow = (what: "command" | "data") => {
      if (internal._closing || internal._closed) return;
      log.info("cutting {peer}: {what} too slow", { peer: internal.remoteAddress, what });
      conn.send(
        421,
        what === "data"
          ? "4.4.2 Message data arriving too slowly, closing connection"
          : "4.4.2 Command not completed in time, closing connection",
      );
      conn.close();
    };
    guardParser(internal._parser, limits, slow);
    const create = internal._createParser.bind(conn);
    internal._createParser = () => {
      const parser = create();
      guardParser(parser, limits, slow);
      return parser;
    };
  }

  class EmpathSmtpServer extends SMTPServer {
    override connect(socket: net.Socket, socketOptions: Record<string, unknown>) {
      socket.setNoDelay(true);
      const conn = new SMTPConnection(this, socket, socketOptions) as Conn;
      guardConnection(conn);
      let errors = 0;
      const send: SendFn = conn.send.bind(conn);
      // Our replies carry their own enhanced status code; count errors for the max_errors limit.
      conn.send = (code, data, context) => {
        // RFC 4954 14 / Postfix smtpd_tls_auth_only: never offer AUTH on a clear-text channel.
        if (Array.isArray(data) && !(conn as unknown as { secure: boolean }).secure) {
          data = data.filter((line) => !line.startsWith("AUTH "));
        }
        send(code, data, typeof data === "string" && ENHANCED.test(data) ? false : context);
        if (code >= 400) deps.metrics?.smtpRejections.inc({ code: String(code) });
        if (code >= 400 && mods) mods.smtpError(conn.session, code, data);
        if (code >= 400 && code !== 421 && ++errors >= cfg().smtp.max_errors) {
          send(421, "4.7.0 Too many errors, closing connection", false);
        }
      };
      conns.set(conn.id, conn);
      mods?.instrument(conn);
      this.connections.add(conn);
      conn.on("error", (err: Error) => log.debug("session error: {error}", { error: err.message }));
      conn.on("connect", () => {});
      // smtp-server's init() waits a fixed 100 ms before the greeting to catch early talkers;
      // here the pause is smtp.greet_delay (default 0, like Postfix without postscreen).
      const c = conn as unknown as { _setListeners(cb: () => void): void; connectionReady(): void; name: string };
      c._setListeners(() => {
        if (this.options.maxClients && this.connections.size > this.options.maxClients) {
          return conn.send(421, `${c.name} Too many connected clients, try again in a moment`, false);
        }
        const delay = cfg().smtp.greet_delay;
        if (delay <= 0) return c.connectionReady();
        const timer = setTimeout(() => c.connectionReady(), delay);
        Deno.unrefTimer(timer as unknown as number);
      });
    }
  }

  const server = new EmpathSmtpServer(options);
  server.on("error", (err: Error) => log.debug("listener {name} socket error: {error}", { name, error: err.message }));
  server.server.on("connection", (s: net.Socket) => s.setNoDelay(true));

  // PROXY protocol: our own accept path reads a v1/v2 header from trusted peers.
  let proxyServer: net.Server | undefined;
  if (proxyNets.length > 0) {
    proxyServer = net.createServer((socket) => {
      socket.setNoDelay(true);
      socket.on("error", () => {});
      const peer = socket.remoteAddress ?? "";
      const handOver = (opts: Record<string, unknown>) => {
        if (!secure) return server.connect(socket, opts);
        // Implicit TLS after the PROXY header: reuse smtp-server's handshake.
        (server as unknown as { _upgrade(s: net.Socket, cb: (e: Error | null, t: net.Socket) => void): void })
          ._upgrade(socket, (err, tlsSocket) => err ? socket.destroy() : server.connect(tlsSocket, opts));
      };
      if (!matchesAny(proxyNets, peer)) {
        return handOver({});
      }
      readProxyHeader(socket, cfg().smtp.timeouts.handshake).then((info) => {
        const opts = info.command === "proxy" && info.sourceAddress
          ? { remoteAddress: info.sourceAddress, remotePort: info.sourcePort }
          : {};
        log.debug("PROXY v{v} from {proxy}: client {client}", {
          v: info.version,
          proxy: peer,
          client: info.sourceAddress ?? "(local)",
        });
        handOver(opts);
      }, (err: Error) => {
        log.info("dropping connection from {peer}: bad PROXY header ({error})", { peer, error: err.message });
        socket.destroy();
      });
    });
    proxyServer.on("error", (err) => log.error("listener {name}: {error}", { name, error: err.message }));
  }

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
      // Sessions between transactions are told now; sessions in DATA finish first.
      for (const conn of conns.values()) if (!conn._dataStream) conn.send(421, "4.3.2 Service shutting down");
      const deadline = new Promise((r) => setTimeout(r, graceMs));
      while (inflight.size > 0) {
        const done = await Promise.race([
          Promise.allSettled([...inflight]).then(() => true),
          deadline.then(() => false),
        ]);
        if (!done) break;
      }
      for (const conn of conns.values()) {
        conn.send(421, "4.3.2 Service shutting down");
        conn._socket.destroy();
      }
      await closed;
    },
    sessions() {
      return [...conns.values()].map((conn) => sessionInfo(conn, name));
    },
    kill(id) {
      const conn = conns.get(id);
      if (!conn) return false;
      conn.send(421, "4.7.0 Session ended by the administrator"); // a 421 closes the connection
      return true;
    },
    updateTls(files) {
      server.updateSecureContext({ key: files.key, cert: files.cert });
    },
  };
}

function envelopeOf(session: SMTPServerSession, listener: string, submission: boolean): IntakeEnvelope {
  const env = session.envelope as SMTPServerSession["envelope"] & {
    dsn?: { ret?: string; envid?: string };
    smtpUtf8?: boolean;
    bodyType?: string;
  };
  const mailFrom = env.mailFrom || { address: "" };
  const cipher = session.tlsOptions as { name?: string; standardName?: string; version?: string } | false;
  return {
    sender: mailFrom.address ?? "",
    recipients: env.rcptTo.map((r) => {
      const dsn = (r as { dsn?: { notify?: string[]; orcpt?: string } }).dsn;
      return { address: r.address, notify: dsn?.notify, orcpt: dsn?.orcpt };
    }),
    dsn: {
      ret: env.dsn?.ret === "FULL" || env.dsn?.ret === "HDRS" ? env.dsn.ret : undefined,
      envid: env.dsn?.envid,
    },
    smtpUtf8: !!env.smtpUtf8,
    bodyType: env.bodyType,
    client: {
      address: session.remoteAddress,
      port: session.remotePort,
      helo: session.hostNameAppearsAs,
      user: typeof session.user === "string" ? session.user : undefined,
      listener,
    },
    esmtp: session.openingCommand !== "HELO",
    tls: session.secure && cipher ? { version: cipher.version, cipher: cipher.standardName ?? cipher.name } : undefined,
    submission,
  };
}

const peerOf = (conn: Conn | undefined) => conn && `${conn.session.remoteAddress}:${conn.session.remotePort}`;

function sessionInfo(conn: Conn, listener: string): SessionInfo {
  const s = conn.session;
  const env = s.envelope;
  const cipher = s.tlsOptions as { name?: string; standardName?: string; version?: string } | false;
  const state: SessionInfo["state"] = conn._dataStream
    ? "data"
    : env?.rcptTo?.length
    ? "rcpt"
    : env?.mailFrom
    ? "mail"
    : s.hostNameAppearsAs
    ? "ehlo"
    : "connected";
  return {
    id: conn.id,
    listener,
    peer: `${s.remoteAddress}:${s.remotePort}`,
    state,
    tls: !!s.secure,
    helo: s.hostNameAppearsAs || undefined,
    tlsVersion: s.secure && cipher ? cipher.version : undefined,
    tlsCipher: s.secure && cipher ? cipher.standardName ?? cipher.name : undefined,
    user: typeof s.user === "string" ? s.user : undefined,
    startedAt: (conn as unknown as { _startedAt?: number })._startedAt ?? Date.now(),
  };
}
