/**
 * The control socket in the daemon: a Unix socket created with mode 0600, an
 * optional shared token (compared in constant time), bounded request frames,
 * timeouts, any number of clients, and an audit line for every command that
 * changes state.
 *
 * On start, a socket file that answers means another instance is running and
 * start-up is refused; a socket file nobody answers on is stale and removed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { ControlClient } from "./client.ts";
 * import { startControlServer } from "./server.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const handlers = { "system.ping": { mutates: false, run: () => ({ pong: true, version: "0.0.0" }) } };
 * const control = await startControlServer({ path: `${dir}/control.sock`, handlers, maxRequest: 65536, timeoutMs: 30_000, log: getLogger(["empath"]) });
 * const client = await ControlClient.connect(control.path);
 * assert.deepEqual(await client.call("system.ping"), { pong: true, version: "0.0.0" });
 * client.close();
 * await control.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { dirname, join } from "node:path";
import type { Logger } from "@logtape/logtape";
import type { AuditLog } from "../observability/audit.ts";
import {
  type ClientIdentity,
  ControlError,
  type ControlRequest,
  type ControlResponse,
  FrameReader,
  PROTOCOL_VERSION,
  writeFrame,
} from "./protocol.ts";

/** One command the daemon answers. */
export interface CommandHandler {
  /** True for commands that change state: they are written to the audit log. */
  mutates: boolean;
  run(args: Record<string, unknown>): Promise<unknown> | unknown;
  /**
   * Set for streaming commands: sends events with `emit` until `signal` aborts (the client hung
   * up). The server writes each as `{ version, id, ok: true, event }`; the connection then ends.
   */
  stream?(args: Record<string, unknown>, emit: (event: unknown) => void, signal: AbortSignal): Promise<void>;
}

/** Options for {@link startControlServer}. */
export interface ControlServerOptions {
  path: string;
  handlers: Record<string, CommandHandler>;
  /** The shared token, when one is configured. */
  token?: string;
  maxRequest: number;
  timeoutMs: number;
  log: Logger;
  audit?: AuditLog;
}

/** A running control server. */
export interface ControlServer {
  readonly path: string;
  /** Connected clients right now. */
  readonly clients: number;
  close(): Promise<void>;
}

/** Refuses when another daemon answers on `path`; removes a stale socket file. */
export async function claimSocketPath(path: string, log: Logger): Promise<void> {
  const info = await Deno.lstat(path).catch(() => null);
  if (!info) return;
  if (!info.isSocket) {
    throw new ControlError(
      `control.socket = "${path}": the path exists and is not a socket; remove it or set control.socket to another path`,
      "ALREADY_RUNNING",
    );
  }
  let conn: Deno.UnixConn | undefined;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    await Deno.remove(path);
    log.warning("removed a stale control socket {path} (no daemon answered on it)", { path });
    return;
  }
  conn.close();
  throw new ControlError(
    `another Empath instance is running: its control socket ${path} answers. Stop it first, or give this instance its own data_dir or control.socket.`,
    "ALREADY_RUNNING",
  );
}

const digest = async (s: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));

/** Compares two secrets in constant time (hashes first, so lengths do not leak either). */
export async function tokensMatch(given: string, expected: string): Promise<boolean> {
  return timingSafeEqual(await digest(given), await digest(expected));
}

/** Reads a client's uid from /proc to check what it claims (Linux; undefined elsewhere). */
async function verifyPeer(client: ClientIdentity | undefined) {
  if (!client || !Number.isInteger(client.pid)) return { pid: undefined, uid: undefined, verified: false };
  const status = await Deno.readTextFile(`/proc/${client.pid}/status`).catch(() => "");
  const uid = Number(status.match(/^Uid:\s+(\d+)/m)?.[1] ?? NaN);
  const verified = Number.isFinite(uid) && (client.uid === undefined || client.uid === uid);
  return { pid: client.pid, uid: Number.isFinite(uid) ? uid : client.uid, user: client.user, verified };
}

function isRequest(v: unknown): v is ControlRequest {
  const r = v as ControlRequest;
  return typeof r === "object" && r !== null && typeof r.version === "number" && typeof r.command === "string" &&
    (r.args === undefined || (typeof r.args === "object" && r.args !== null && !Array.isArray(r.args)));
}

/**
 * Binds the socket inside a fresh 0700 directory, makes it 0600, and only then renames it to
 * `path`: no other user can connect in between, and no process-wide umask (which would need
 * --allow-sys) is touched.
 */
async function bindOwnerOnly(path: string): Promise<Deno.UnixListener> {
  const staging = await Deno.makeTempDir({ dir: dirname(path), prefix: ".control-" });
  let listener: Deno.UnixListener | undefined;
  try {
    const staged = join(staging, "sock");
    listener = Deno.listen({ transport: "unix", path: staged });
    await Deno.chmod(staged, 0o600);
    await Deno.rename(staged, path);
    return listener;
  } catch (err) {
    listener?.close();
    throw err;
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

/** Creates the socket (mode 0600) and serves requests until closed. */
export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const { path, log } = options;
  await claimSocketPath(path, log);
  const listener = await bindOwnerOnly(path);
  const conns = new Set<Deno.Conn>();
  /** Stops running streams on close. */
  const closers = new Set<() => void>();
  let serial = 0;
  let closing = false;

  /** A streaming command: events until the client hangs up (or sends anything); then the connection ends. */
  async function streamAnswer(
    conn: Deno.Conn,
    reader: FrameReader,
    id: number,
    raw: ControlRequest,
    h: CommandHandler,
  ) {
    const stop = new AbortController();
    let writing = Promise.resolve();
    const emit = (event: unknown) => {
      if (stop.signal.aborted) return;
      writing = writing.then(() => writeFrame(conn, { version: PROTOCOL_VERSION, id, ok: true, event }))
        .catch(() => stop.abort());
    };
    reader.read({ maxBytes: options.maxRequest, timeoutMs: 2 ** 31 - 1 }).then(() => stop.abort(), () => stop.abort());
    const closed = () => stop.abort();
    closers.add(closed);
    try {
      await h.stream!(raw.args ?? {}, emit, stop.signal);
    } catch (err) {
      const e = err as Error;
      await writeFrame(conn, {
        version: PROTOCOL_VERSION,
        id,
        ok: false,
        error: { code: err instanceof ControlError ? err.code : "FAILED", message: e.message },
      }).catch(() => {});
    } finally {
      closers.delete(closed);
      stop.abort();
      await writing;
    }
  }

  async function answer(conn: Deno.Conn, connection: number, raw: unknown, reader: FrameReader): Promise<boolean> {
    const id = typeof (raw as ControlRequest)?.id === "number" ? (raw as ControlRequest).id : 0;
    const fail = (code: ControlError["code"], message: string): ControlResponse => ({
      version: PROTOCOL_VERSION,
      id,
      ok: false,
      error: { code, message },
    });
    const refuse = async (response: ControlResponse) => {
      await writeFrame(conn, response);
      return false;
    };
    if (!isRequest(raw)) {
      return await refuse(fail("BAD_FRAME", "expected {version, id, command, args}"));
    }
    if (raw.version !== PROTOCOL_VERSION) {
      return await refuse(
        fail(
          "UNSUPPORTED_VERSION",
          `protocol version ${raw.version} is not supported; this daemon speaks version ${PROTOCOL_VERSION}`,
        ),
      );
    }
    if (options.token !== undefined && !(await tokensMatch(String(raw.token ?? ""), options.token))) {
      log.warning("control request {command} refused: wrong or missing token", { command: raw.command });
      return await refuse(fail("UNAUTHORIZED", "wrong or missing token (see control.token_file)"));
    }
    const handler = Object.hasOwn(options.handlers, raw.command) ? options.handlers[raw.command] : undefined;
    if (!handler) {
      return await refuse(fail("UNKNOWN_COMMAND", `unknown command "${raw.command}"`));
    }
    if (handler.stream) {
      log.info("control: {command} streaming to connection {connection}", { command: raw.command, connection });
      await streamAnswer(conn, reader, id, raw, handler);
      return true;
    }
    const started = Date.now();
    log.debug("control request {command} on connection {connection}", { command: raw.command, connection });
    let response: ControlResponse;
    try {
      const result = await handler.run(raw.args ?? {});
      response = { version: PROTOCOL_VERSION, id, ok: true, result, connection };
    } catch (err) {
      const e = err as Error;
      response = fail(err instanceof ControlError ? err.code : "FAILED", e.message);
      if (!(err instanceof ControlError)) {
        log.error("control command {command} failed: {error}", {
          command: raw.command,
          error: e.stack ?? e.message,
        });
      }
    }
    if (handler.mutates) {
      options.audit?.write({
        type: "control",
        command: raw.command,
        args: raw.args ?? {},
        peer: await verifyPeer(raw.client),
        result: response.ok ? "ok" : "error",
        error: response.ok ? undefined : response.error.message,
        duration_ms: Date.now() - started,
      });
      log.info("control: {command} {result}", { command: raw.command, result: response.ok ? "ok" : "error" });
    }
    await writeFrame(conn, response);
    return false;
  }

  async function serve(conn: Deno.Conn) {
    const connection = ++serial;
    const reader = new FrameReader(conn);
    try {
      while (!closing) {
        let raw: unknown;
        try {
          raw = await reader.read({ maxBytes: options.maxRequest, timeoutMs: options.timeoutMs });
        } catch (err) {
          const e = err as ControlError;
          if (e.code === "TOO_LARGE" || e.code === "BAD_FRAME") {
            await writeFrame(conn, {
              version: PROTOCOL_VERSION,
              id: 0,
              ok: false,
              error: { code: e.code, message: e.message },
            })
              .catch(() => {});
            log.warning("control client sent a bad frame: {error}", { error: e.message });
          }
          return; // timeouts and broken frames end the connection: the stream cannot be trusted any more
        }
        if (raw === null) return;
        if (await answer(conn, connection, raw, reader)) return;
      }
    } catch {
      // peer went away mid-answer
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }

  (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        void serve(conn);
      }
    } catch { /* listener closed */ }
  })();
  log.info("control socket listening on {path}", { path });

  return {
    path,
    get clients() {
      return conns.size;
    },
    async close() {
      closing = true;
      for (const stop of closers) stop();
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await Deno.remove(path).catch(() => {});
    },
  };
}
