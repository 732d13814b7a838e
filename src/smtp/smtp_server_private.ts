/**
 * Every use of npm:smtp-server internals, in one place. Written against
 * **smtp-server@3.21.6** (pinned in deno.json): the underscore fields and the
 * `handler_*` methods used here are not public API and may change in any release.
 * When upgrading smtp-server, re-read its `smtp-connection.js`, `smtp-stream.js`
 * and `smtp-server.js` against the functions below; no other file touches them.
 *
 * What Empath needs from the internals:
 * - its own {@link SMTPConnection}s (send filter, greeting delay, per-request deadlines);
 * - the command parser's input (slowloris deadlines, see drip_guard.ts);
 * - the EHLO/HELO/STARTTLS handlers (session hooks run before them);
 * - the implicit-TLS handshake after a PROXY header;
 * - the socket and DATA state of a session (timeouts, shutdown, `empathctl smtp connections`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import net from "node:net";
 * import { SMTPServer } from "smtp-server";
 * import { createConnection, startWhenReady } from "./smtp_server_private.ts"; // @ts-ignore deno#26900
 *
 * const server = new SMTPServer({ name: "mx.example", authOptional: true, disabledCommands: ["STARTTLS"] }); // options and handlers only, never listens
 * const accept = net.createServer((socket) => {
 *   const conn = createConnection(server, socket, {});
 *   startWhenReady(conn, () => conn.connectionReady()); // greet at once, no fixed 100 ms pause
 * });
 * await new Promise<void>((resolve) => accept.listen(0, "127.0.0.1", resolve));
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: (accept.address() as net.AddressInfo).port });
 * const greeting = new Uint8Array(512);
 * const n = await client.read(greeting);
 * assert.match(new TextDecoder().decode(greeting.subarray(0, n ?? 0)), /^220 mx\.example/);
 * client.close();
 * await new Promise((resolve) => accept.close(resolve));
 * ```
 * @module
 */
import type net from "node:net";
import type tls from "node:tls";
import type { SMTPServer } from "smtp-server";
import { SMTPConnection, type SMTPConnectionOptions } from "smtp-server/lib/smtp-connection.js";
import type { SMTPStream } from "smtp-server/lib/smtp-stream.js";

/** One smtp-server session (its public fields: id, session, secure, send, close, connectionReady, name). */
export type Connection = SMTPConnection;
/** Options smtp-server passes to a new connection (PROXY addresses go here). */
export type ConnectionOptions = SMTPConnectionOptions;
/** smtp-server's command/data parser of one connection (opaque outside this file). */
export type Parser = SMTPStream;

/** A new session on `socket`, not yet started (see {@link startWhenReady}). */
export function createConnection(server: SMTPServer, socket: net.Socket, options: ConnectionOptions): Connection {
  return new SMTPConnection(server, socket, options);
}

/** Attaches the socket listeners and calls `ready` instead of smtp-server's fixed 100 ms pre-greeting pause. */
export function startWhenReady(conn: Connection, ready: () => void): void {
  conn._setListeners(ready);
}

/** The session's socket (plain or TLS, whichever is current). */
export function socketOf(conn: Connection): net.Socket {
  return conn._socket;
}

/** True while the session receives message data. */
export function inDataMode(conn: Connection): boolean {
  return !!conn._dataStream;
}

/** True once the session is closing or closed. */
export function isClosing(conn: Connection): boolean {
  return conn._closing || conn._closed;
}

/** Calls `watch` with the session's current parser and with each one made later (after STARTTLS). */
export function watchParsers(conn: Connection, watch: (parser: Parser) => void): void {
  if (conn._parser) watch(conn._parser);
  const create = conn._createParser.bind(conn);
  conn._createParser = () => {
    const parser = create();
    watch(parser);
    return parser;
  };
}

/** What a parser watcher can see. */
export interface ParserTap {
  /** Registers `fn` to see every chunk of input before the parser does. */
  onInput(fn: (chunk: Uint8Array) => void): void;
  /** Registers `fn` for the end of the parser (session finished or destroyed). */
  onEnd(fn: () => void): void;
  /** True once the parser is closed. */
  closed(): boolean;
  /** True while the parser reads message data (not commands). */
  dataMode(): boolean;
  /** True when part of a command line has arrived without its line end. */
  partialLine(): boolean;
}

/** A {@link ParserTap} over one parser. */
export function tapParser(parser: Parser): ParserTap {
  return {
    onInput(fn) {
      const write = parser._write.bind(parser);
      parser._write = (chunk, encoding, next) => {
        fn(chunk);
        write(chunk, encoding, next);
      };
    },
    onEnd(fn) {
      parser.once("finish", fn);
      parser.once("close", fn);
    },
    closed: () => parser.isClosed,
    dataMode: () => parser._dataMode,
    partialLine: () => parser._remainder.length > 0,
  };
}

/** Commands whose handler can be preceded by a check. */
export type WrappableCommand = "EHLO" | "HELO" | "STARTTLS";

/**
 * Runs `before(line, proceed, done)` ahead of smtp-server's handler of `command`:
 * call `proceed()` to let smtp-server handle the command, or reply yourself and call `done()`.
 */
export function beforeCommand(
  conn: Connection,
  command: WrappableCommand,
  before: (line: string, proceed: () => void, done: () => void) => void,
): void {
  const key = `handler_${command}` as const;
  const original = conn[key];
  conn[key] = (line, callback) => {
    before(String(line ?? ""), () => original.call(conn, line, callback), callback);
  };
}

/** smtp-server's implicit-TLS handshake (as for `secure` listeners) on an accepted socket. */
export function upgradeToTls(
  server: SMTPServer,
  socket: net.Socket,
  callback: (err: Error | null, tlsSocket?: tls.TLSSocket) => void,
): void {
  server._upgrade(socket, callback);
}

/**
 * The plain socket under a TLS socket that wraps it (Node's `TLSSocket#_parent`, also in Deno's
 * node:tls); undefined for a plain socket.
 */
export function tlsParentOf(socket: net.Socket): net.Socket | undefined {
  return (socket as net.Socket & { _parent?: net.Socket })._parent ?? undefined;
}
