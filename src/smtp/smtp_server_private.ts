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
 * - the socket and DATA state of a session (timeouts, shutdown, `empathctl smtp connections`);
 * - a faster DATA-mode scan ({@link installFastDataScan}, #18).
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
import { Buffer } from "node:buffer";
import type net from "node:net";
import { setImmediate } from "node:timers";
import type tls from "node:tls";
import type { SMTPServer } from "smtp-server";
import { SMTPConnection, type SMTPConnectionOptions } from "smtp-server/lib/smtp-connection.js";
import { SMTPStream } from "smtp-server/lib/smtp-stream.js";
import { latin1 } from "../util/latin1.ts";

/** One smtp-server session (its public fields: id, session, secure, send, close, connectionReady, name). */
export type Connection = SMTPConnection;
/** Options smtp-server passes to a new connection (PROXY addresses go here). */
export type ConnectionOptions = SMTPConnectionOptions;
/** smtp-server's command/data parser of one connection (opaque outside this file). */
export type Parser = SMTPStream;

/** A new session on `socket`, not yet started (see {@link startWhenReady}); its replies are batched. */
export function createConnection(server: SMTPServer, socket: net.Socket, options: ConnectionOptions): Connection {
  const conn = new SMTPConnection(server, socket, options);
  batchReplies(conn);
  return conn;
}

/** Replies after which the socket changes hands or closes: written at once, never held back. */
const FLUSH_NOW = new Set([220, 221, 421]);

/** Most event-loop hops a reply waits for more replies to join it. */
const MAX_HOPS = 64;

/**
 * Pipelined replies leave in one `writev` instead of one write each: smtp-server's `send` (its
 * single write site) is wrapped to cork the socket and uncork it once a whole turn of the event
 * loop (`setImmediate`, ~8 µs each; a 0 ms timer would wait ~1–2 ms in Deno) went by without
 * another reply. smtp-server takes pipelined commands one per turn, so pipelined MAIL, ten RCPTs
 * and DATA (RFC 2920) cost one syscall and one wake-up of the client instead of twelve. Only
 * replies to input that held more than one command line are held back: a client that waits for
 * each reply gets it at once. A 220 (greeting, STARTTLS), 221 or 421 flushes at once: the
 * socket is about to be upgraded or closed.
 */
function batchReplies(conn: Connection): void {
  const send = conn.send.bind(conn);
  let pipelined = false;
  watchParsers(conn, (parser) => {
    const tap = tapParser(parser);
    tap.onInput((chunk) => {
      if (tap.dataMode()) return;
      const first = chunk.indexOf(10);
      if (first >= 0 && chunk.indexOf(10, first + 1) >= 0) pipelined = true;
    });
  });
  let corked: net.Socket | undefined;
  let sends = 0;
  let seen = 0;
  let hops = 0;
  const uncork = () => {
    const socket = corked;
    corked = undefined;
    pipelined = false;
    socket?.uncork();
  };
  const tick = () => {
    if (!corked) return;
    if (sends !== seen && ++hops < MAX_HOPS) {
      seen = sends;
      setImmediate(tick);
      return;
    }
    uncork();
  };
  conn.send = (code: number, data?: string | string[], context?: string) => {
    const socket = conn._socket as net.Socket | undefined;
    if (FLUSH_NOW.has(code)) {
      uncork();
      return send(code, data, context);
    }
    sends++;
    if (pipelined && !corked && socket && !conn._upgrading && socket.writable) {
      corked = socket;
      socket.cork();
      seen = sends - 1; // the first look always waits one more turn
      hops = 0;
      setImmediate(tick);
    }
    send(code, data, context);
  };
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

type Done = (err?: Error | null) => void;

const originalFeed = SMTPStream.prototype._feedDataStream;
let fastInstalled = false;
const END_SEQUENCE = Buffer.from("\r\n.\r\n");
const DOT_CRLF = Buffer.from(".\r\n");
const DOT = 0x2e;

/**
 * Replaces smtp-server's DATA-mode scan (`SMTPStream#_feedDataStream`, smtp-server@3.21.6
 * `dist/esm/smtp-stream.js`), which walks every byte in JavaScript looking for a '.' after an
 * LF (the end of data, or a dot to unstuff), by a copy of it that finds those dots with
 * `String.prototype.indexOf("\n.")` over a latin1 view of the chunk (about 9 µs per 64 KiB
 * instead of 30; `Buffer.prototype.indexOf` with a two-byte needle takes 180 µs). Everything
 * else — the 4 bytes kept back across chunks, the start-of-data checks, byte counting,
 * back-pressure — is the original's code, so the data stream and the commands after it are
 * exactly the original's for every input and chunking. Idempotent; session_setup.ts calls it.
 */
export function installFastDataScan(): void {
  if (fastInstalled) return;
  fastInstalled = true;
  SMTPStream.prototype._feedDataStream = function fastFeed(this: SMTPStream, chunk: Buffer, done: Done) {
    feedData(this, chunk, done, undefined);
  };
}

/**
 * A new smtp-server command/data parser (for tests and benchmarks); with `original`, one that
 * runs smtp-server's own per-byte DATA scan even after {@link installFastDataScan}.
 */
export function createParser(options: { original?: boolean } = {}): Parser {
  const parser = new SMTPStream();
  if (options.original) parser._feedDataStream = originalFeed;
  return parser;
}

/**
 * `SMTPStream#_feedDataStream` with the per-byte loop replaced; `text` is the latin1 view of
 * `chunk` when the caller already has it (the rest of a chunk after an unstuffed dot).
 */
function feedData(stream: SMTPStream, chunk: Buffer, done: Done, text: string | undefined): void {
  // only called in data mode, which always has a stream
  const dataStream = stream._dataStream!;
  if (stream._lastBytes && stream._lastBytes.length) {
    chunk = Buffer.concat([stream._lastBytes, chunk], stream._lastBytes.length + chunk.length);
    stream._lastBytes = false;
    text = undefined;
  }
  let len = chunk.length;
  // Does the data start with the end terminator (see the original for why _atDataStart)?
  if (stream._atDataStart && len >= 3 && Buffer.compare(chunk.subarray(0, 3), DOT_CRLF) === 0) {
    stream._endDataMode(false, chunk.subarray(3), done);
    return;
  }
  // an escape dot as the first character
  if (stream._atDataStart && len >= 2 && chunk[0] === DOT && chunk[1] === DOT) {
    chunk = chunk.subarray(1);
    len--;
    stream._atDataStart = false;
    text = undefined;
  }
  text ??= latin1(chunk);
  // The original's `for (i = 2; i < len - 2; i++) if (chunk[i] === DOT && chunk[i - 1] === LF)`.
  for (let lf = text.indexOf("\n.", 1); lf !== -1 && lf + 1 < len - 2; lf = text.indexOf("\n.", lf + 1)) {
    const i = lf + 1;
    // if the dot matches end terminator
    if (Buffer.compare(chunk.subarray(i - 2, i + 3), END_SEQUENCE) === 0) {
      const buf = chunk.subarray(0, i);
      stream._countDataBytes(buf.length);
      stream._endDataMode(buf, chunk.subarray(i + 3), done);
      return;
    }
    // an escape dot: emit what comes before it and continue without it
    if (chunk[i + 1] === DOT) {
      const buf = chunk.subarray(0, i);
      stream._lastBytes = false;
      stream._countDataBytes(buf.length);
      if (dataStream.writable) dataStream.write(buf);
      const rest = chunk.subarray(i + 1);
      const restText = text.slice(i + 1); // a slice, not a copy: the rest is not decoded again
      setImmediate(() => feedData(stream, rest, done, restText));
      return;
    }
  }
  // keep the last bytes
  stream._lastBytes = chunk.length < 4 ? chunk : chunk.subarray(chunk.length - 4);
  // if current chunk is longer than the remainder bytes we keep for later emit the available bytes
  if (stream._lastBytes.length < chunk.length) {
    const buf = chunk.subarray(0, chunk.length - stream._lastBytes.length);
    stream._countDataBytes(buf.length);
    // write to stream but stop if need to wait for drain
    if (dataStream.writable) {
      const handled = dataStream.write(buf);
      if (!handled && !dataStream.destroyed) {
        // a stream that the application destroys never drains, it only closes
        const onDrain = () => {
          dataStream.removeListener("drain", onDrain);
          dataStream.removeListener("close", onDrain);
          done();
        };
        dataStream.once("drain", onDrain);
        dataStream.once("close", onDrain);
      } else {
        return done();
      }
    } else {
      return done();
    }
  } else {
    // nothing to emit, continue with the input stream
    return done();
  }
}
