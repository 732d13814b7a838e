/**
 * How each new SMTP session is set up, on top of npm:smtp-server's own: the reply
 * filter (enhanced codes, no AUTH on clear text, the max_errors limit), per-request
 * deadlines against drip-feeding clients, the greeting delay, and the EHLO/HELO/
 * STARTTLS session hooks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type net from "node:net";
 * import { getLogger } from "@logtape/logtape";
 * import { parseConfig } from "../config/load.ts";
 * import { createSessionRegistry } from "./session_registry.ts";
 * import { createSmtpServer } from "./session_setup.ts"; // @ts-ignore deno#26900
 *
 * const cfg = () => parseConfig("", "config.toml");
 * const registry = createSessionRegistry("mx");
 * const server = createSmtpServer({ name: "mx.example", authOptional: true, disabledCommands: ["STARTTLS"] }, { listener: "mx", registry, log: getLogger(["empath"]), settings: () => cfg().smtp });
 * await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: (server.server.address() as net.AddressInfo).port });
 * const greeting = new Uint8Array(512);
 * const n = await conn.read(greeting);
 * assert.match(new TextDecoder().decode(greeting.subarray(0, n ?? 0)), /^220 mx\.example/);
 * conn.close();
 * await new Promise<void>((resolve) => server.close(() => resolve()));
 * ```
 * @module
 */
import type net from "node:net";
import type { Logger } from "@logtape/logtape";
import { SMTPServer, type SMTPServerOptions } from "smtp-server";
import { guardParser } from "./drip_guard.ts";
import type { HookVerdict, SessionHooks } from "./hooks.ts";
import { hookSession } from "./session_facts.ts";
import type { SessionRegistry } from "./session_registry.ts";
import {
  beforeCommand,
  type Connection,
  type ConnectionOptions,
  createConnection,
  installFastDataScan,
  isClosing,
  socketOf,
  startWhenReady,
  tapParser,
  tlsParentOf,
  watchParsers,
} from "./smtp_server_private.ts";
import { armHandshakeDeadline } from "./tls_deadline.ts";

installFastDataScan(); // smtp-server's DATA scan without its per-byte loop (#18)

/** The `[smtp]` settings a session reads (on every use, so reloads apply). */
export interface SessionSettings {
  greet_delay: number;
  max_errors: number;
  min_data_rate: number;
  timeouts: { command: number; data_block: number; handshake: number };
}

/** What session set-up needs from the listener. */
export interface SessionSetup {
  listener: string;
  registry: SessionRegistry;
  log: Logger;
  settings: () => SessionSettings;
  hooks?: SessionHooks;
  /** Called for every error reply (4xx/5xx) sent. */
  onErrorReply?: (conn: Connection, code: number) => void;
  /** Called once per STARTTLS handshake that fails (`handshake`) or misses smtp.timeouts.handshake (`timeout`). */
  onTlsFailure?: (reason: "handshake" | "timeout") => void;
}

type SendFn = Connection["send"];

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

/** An smtp-server whose sessions are set up as described above. */
export function createSmtpServer(options: SMTPServerOptions, setup: SessionSetup): SMTPServer {
  class EmpathSmtpServer extends SMTPServer {
    override connect(socket: net.Socket, socketOptions?: ConnectionOptions | null) {
      socket.setNoDelay(true);
      const conn = createConnection(this, socket, socketOptions ?? {});
      guardConnection(conn, setup);
      guardStartTls(conn, setup);
      const parent = tlsParentOf(socket);
      if (parent) handshaken.add(parent); // an implicit-TLS handshake finished in time
      filterReplies(conn, setup);
      setup.registry.add(conn);
      if (setup.hooks) commandHooks(conn, setup.hooks, setup.listener);
      this.connections.add(conn);
      conn.on("error", (err: Error) => setup.log.debug("session error: {error}", { error: err.message }));
      conn.on("connect", () => {});
      // smtp-server's init() waits a fixed 100 ms before the greeting to catch early talkers;
      // here the pause is smtp.greet_delay (default 0, like Postfix without postscreen).
      startWhenReady(conn, () => {
        if (this.options.maxClients && this.connections.size > this.options.maxClients) {
          return conn.send(421, `${conn.name} Too many connected clients, try again in a moment`, false);
        }
        const delay = setup.settings().greet_delay;
        if (delay <= 0) return conn.connectionReady();
        const timer = setTimeout(() => conn.connectionReady(), delay);
        Deno.unrefTimer(timer as unknown as number);
      });
    }
  }
  return new EmpathSmtpServer(options);
}

/** Plain sockets of implicit-TLS sessions whose handshake completed. */
const handshaken = new WeakSet<net.Socket>();

/** For implicit-TLS listeners: call on every accepted plain socket, before its handshake. */
export function guardImplicitTls(socket: net.Socket, setup: SessionSetup): void {
  armHandshakeDeadline(socket, setup.settings().timeouts.handshake, () => handshaken.has(socket), () => {
    setup.log.info("cutting {peer}: TLS handshake not done within smtp.timeouts.handshake", {
      peer: socket.remoteAddress,
    });
  });
}

/** The TLS handshake after STARTTLS must finish within smtp.timeouts.handshake. */
function guardStartTls(conn: Connection, setup: SessionSetup) {
  beforeCommand(conn, "STARTTLS", (line, proceed) => {
    const upgrading = line.trim().split(/\s+/).length === 1 && !conn.secure;
    const plain = socketOf(conn);
    proceed();
    if (!upgrading) return;
    let counted = false;
    const failed = (reason: "handshake" | "timeout") => {
      if (counted || conn.secure) return;
      counted = true;
      setup.onTlsFailure?.(reason);
    };
    // smtp-server reports a failed handshake (bad version, no shared cipher, alert) as a connection error.
    conn.once("error", () => failed("handshake"));
    armHandshakeDeadline(plain, setup.settings().timeouts.handshake, () => conn.secure, () => {
      failed("timeout");
      setup.log.info("cutting {peer}: TLS handshake after STARTTLS not done within smtp.timeouts.handshake", {
        peer: conn.remoteAddress,
      });
    });
  });
}

/** Our replies carry their own enhanced status code; error replies are counted for max_errors and reported. */
function filterReplies(conn: Connection, setup: SessionSetup) {
  let errors = 0;
  const send: SendFn = conn.send.bind(conn);
  const hooks = setup.hooks;
  conn.send = (code, data, context) => {
    // RFC 4954 14 / Postfix smtpd_tls_auth_only: never offer AUTH on a clear-text channel.
    if (Array.isArray(data) && !conn.secure) {
      data = data.filter((line) => !line.startsWith("AUTH "));
    }
    send(code, data, typeof data === "string" && ENHANCED.test(data) ? false : context);
    if (code >= 400) setup.onErrorReply?.(conn, code);
    if (code >= 400 && hooks?.error) {
      const text = Array.isArray(data) ? data.join(" ") : String(data ?? "");
      hooks.error(hookSession(conn.session, setup.listener), code, text);
    }
    if (code >= 400 && code !== 421 && ++errors >= setup.settings().max_errors) {
      send(421, "4.7.0 Too many errors, closing connection", false);
    }
  };
}

/** Per-request deadlines against clients that drip bytes (see drip_guard.ts). */
function guardConnection(conn: Connection, setup: SessionSetup) {
  const limits = () => {
    const s = setup.settings();
    return { command: s.timeouts.command, dataBlock: s.timeouts.data_block, minDataRate: s.min_data_rate };
  };
  const slow = (what: "command" | "data") => {
    if (isClosing(conn)) return;
    setup.log.info("cutting {peer}: {what} too slow", { peer: conn.remoteAddress, what });
    conn.send(
      421,
      what === "data"
        ? "4.4.2 Message data arriving too slowly, closing connection"
        : "4.4.2 Command not completed in time, closing connection",
    );
    conn.close();
  };
  watchParsers(conn, (parser) => guardParser(tapParser(parser), limits, slow));
}

/** EHLO/HELO and STARTTLS ask the hooks first (when they have those hooks). */
function commandHooks(conn: Connection, hooks: SessionHooks, listener: string) {
  const ask = (proceed: () => void, done: () => void, verdict: Promise<HookVerdict>) =>
    void verdict.then((refusal) => {
      if (!refusal) return proceed();
      conn.send(refusal.responseCode, refusal.message);
      done();
    });
  const helo = hooks.helo?.bind(hooks);
  if (helo) {
    for (const command of ["EHLO", "HELO"] as const) {
      beforeCommand(conn, command, (line, proceed, done) => {
        const parts = line.trim().split(/\s+/);
        if (parts.length !== 2) return proceed();
        const args = { name: parts[1]!, esmtp: command === "EHLO" };
        ask(proceed, done, helo(hookSession(conn.session, listener), args));
      });
    }
  }
  const startTls = hooks.startTls?.bind(hooks);
  if (startTls) {
    beforeCommand(conn, "STARTTLS", (line, proceed, done) => {
      if (line.trim().split(/\s+/).length !== 1 || conn.secure) return proceed();
      ask(proceed, done, startTls(hookSession(conn.session, listener)));
    });
  }
}
