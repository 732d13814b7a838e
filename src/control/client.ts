/**
 * The control client used by `empathctl`: one connection, many requests
 * (watch mode keeps it open), bounded responses (refused from the length prefix
 * before anything is allocated) and a timeout on every request.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { startControlServer } from "./server.ts";
 * import { ControlClient } from "./client.ts"; // @ts-ignore deno#26900
 *
 * // A stand-in for the daemon's control socket (normally /var/lib/empath/control.sock).
 * const dir = await Deno.makeTempDir();
 * const handlers = { "queue.list": { mutates: false, run: () => ({ messages: [], total: 0 }) } };
 * const control = await startControlServer({ path: `${dir}/control.sock`, handlers, maxRequest: 65536, timeoutMs: 30_000, log: getLogger(["empath"]) });
 * const client = await ControlClient.connect(`${dir}/control.sock`);
 * const { messages } = await client.call("queue.list", { status: "deferred", limit: 10 }); // typed: ResultOf<"queue.list">
 * assert.deepEqual(messages, []);
 * client.close();
 * await control.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { ArgsInput, CommandName, ResultOf, StreamingCommand } from "./api.ts";
import { ControlError, type ControlResponse, FrameReader, PROTOCOL_VERSION, writeFrame } from "./protocol.ts";

/** Options for {@link ControlClient.connect}. */
export interface ClientOptions {
  token?: string;
  timeoutMs?: number;
  /** Largest response accepted (default 16 MiB). */
  maxResponse?: number;
}

/** A successful response's result plus the server's connection serial. */
export interface ControlResult<T = unknown> {
  result: T;
  connection?: number;
}

/** The arguments of {@link ControlClient.call}: optional when the command needs none. */
export type CallArgs<N extends CommandName> = Record<string, never> extends ArgsInput<N> ? [args?: ArgsInput<N>]
  : [args: ArgsInput<N>];

/** A connection to the daemon's control socket. */
export class ControlClient {
  #nextId = 1;
  readonly #reader: FrameReader;
  private constructor(readonly conn: Deno.UnixConn, readonly path: string, readonly options: ClientOptions) {
    this.#reader = new FrameReader(conn);
  }

  /** Connects; throws ControlError UNREACHABLE naming the path when no daemon answers. */
  static async connect(path: string, options: ClientOptions = {}): Promise<ControlClient> {
    try {
      return new ControlClient(await Deno.connect({ transport: "unix", path }), path, options);
    } catch (err) {
      const reason = err instanceof Deno.errors.NotFound
        ? "no such socket"
        : err instanceof Deno.errors.ConnectionRefused
        ? "nothing is listening"
        : err instanceof Deno.errors.PermissionDenied
        ? "permission denied (the socket is owner-only: run as the daemon's user)"
        : (err as Error).message;
      throw new ControlError(
        `cannot reach the daemon at ${path}: ${reason}. Is empath running? Point at another socket with --socket PATH or EMPATH_SOCKET.`,
        "UNREACHABLE",
        { cause: err },
      );
    }
  }

  /**
   * Calls a declared command and resolves to its typed result; a daemon "no" becomes a
   * ControlError with its code (BAD_ARGS when the daemon refused an argument).
   */
  async call<N extends CommandName>(command: N, ...args: CallArgs<N>): Promise<ResultOf<N>> {
    return (await this.callDetailed(command, ...args)).result;
  }

  /** Like {@link ControlClient.call}, plus the server's connection serial. */
  async callDetailed<N extends CommandName>(command: N, ...args: CallArgs<N>): Promise<ControlResult<ResultOf<N>>> {
    // The daemon answers a declared command with its declared result type.
    return await this.request<ResultOf<N>>(command, args[0] ?? {});
  }

  /**
   * Sends any command, declared or not, and waits for its answer. Untyped: `T` is the
   * caller's unchecked claim, so prefer {@link ControlClient.call} for declared commands.
   * A daemon "no" becomes a ControlError with its code.
   */
  async request<T = unknown>(command: string, args: object = {}): Promise<ControlResult<T>> {
    const id = this.#nextId++;
    const frame = {
      version: PROTOCOL_VERSION,
      id,
      command,
      args,
      token: this.options.token,
      client: identity(),
    };
    try {
      await writeFrame(this.conn, frame);
    } catch (err) {
      throw new ControlError(`lost the connection to ${this.path}: ${(err as Error).message}`, "UNREACHABLE");
    }
    let raw: unknown;
    try {
      raw = await this.#reader.read({
        maxBytes: this.options.maxResponse ?? 16 * 1024 * 1024,
        timeoutMs: this.options.timeoutMs ?? 30_000,
      });
    } catch (err) {
      const e = err as ControlError;
      if (e.code === "TOO_LARGE") {
        throw new ControlError(`response refused: ${e.message} (raise it with --max-response)`, "TOO_LARGE");
      }
      if (e.code === "TIMEOUT") throw new ControlError(`the daemon did not answer: ${e.message}`, "TIMEOUT");
      throw new ControlError(`lost the connection to ${this.path}: ${e.message}`, "UNREACHABLE");
    }
    if (raw === null) throw new ControlError(`the daemon closed the connection at ${this.path}`, "UNREACHABLE");
    const response = raw as ControlResponse;
    if (!response.ok) throw new ControlError(response.error.message, response.error.code);
    return { result: response.result as T, connection: response.connection };
  }

  /**
   * Calls a streaming command (e.g. "trace.smtp") and yields its events until the daemon ends
   * the stream; closing the client (or leaving the loop) ends it on the daemon's side. This
   * connection serves nothing else afterwards.
   */
  async *stream<N extends StreamingCommand>(command: N, ...args: CallArgs<N>): AsyncGenerator<ResultOf<N>> {
    const id = this.#nextId++;
    const frame = { version: PROTOCOL_VERSION, id, command, args: args[0] ?? {}, token: this.options.token };
    await writeFrame(this.conn, { ...frame, client: identity() }).catch((err) => {
      throw new ControlError(`lost the connection to ${this.path}: ${(err as Error).message}`, "UNREACHABLE");
    });
    const maxBytes = this.options.maxResponse ?? 16 * 1024 * 1024;
    try {
      while (true) {
        let raw: unknown;
        try {
          raw = await this.#reader.read({ maxBytes, timeoutMs: 2 ** 31 - 1 });
        } catch (err) {
          if (this.#closed) return;
          throw new ControlError(`lost the connection to ${this.path}: ${(err as Error).message}`, "UNREACHABLE");
        }
        if (raw === null) return;
        const response = raw as ControlResponse | { ok: true; event: ResultOf<N> };
        if (!response.ok) throw new ControlError(response.error.message, response.error.code);
        if ("event" in response) yield response.event;
      }
    } finally {
      this.close();
    }
  }

  #closed = false;

  /** Closes the connection (idempotent). */
  close(): void {
    this.#closed = true;
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

function identity() {
  let uid: number | undefined;
  try {
    uid = Deno.uid() ?? undefined;
  } catch { /* no --allow-sys: the daemon reads it from /proc instead */ }
  let user: string | undefined;
  try {
    user = Deno.env.get("USER");
  } catch { /* no --allow-env */ }
  return { pid: Deno.pid, uid, user };
}
