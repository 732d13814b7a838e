/**
 * The control protocol: length-prefixed, versioned JSON frames over a Unix socket.
 *
 * Each frame is a 4-byte big-endian length followed by that many bytes of UTF-8
 * JSON. A request is `{ version, id, command, args, token?, client? }`; the answer
 * is `{ version, id, ok: true, result, connection }` or
 * `{ version, id, ok: false, error: { code, message } }`. Both sides bound the
 * frame size and check it from the length prefix, before allocating the body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FrameReader, PROTOCOL_VERSION, writeFrame } from "./protocol.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const listener = Deno.listen({ transport: "unix", path: `${dir}/control.sock` });
 * const conn = await Deno.connect({ transport: "unix", path: `${dir}/control.sock` });
 * const server = await listener.accept();
 * await writeFrame(conn, { version: PROTOCOL_VERSION, id: 1, command: "system.ping", args: {} });
 * const request = await new FrameReader(server).read({ maxBytes: 1 << 20, timeoutMs: 10_000 });
 * assert.deepEqual(request, { version: 1, id: 1, command: "system.ping", args: {} });
 * conn.close();
 * server.close();
 * listener.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */

/** The protocol version both sides speak. */
export const PROTOCOL_VERSION = 1;

/** Error codes carried in error responses and by {@link ControlError}. */
export type ControlErrorCode =
  | "BAD_FRAME" // not JSON, or not a request object
  | "TOO_LARGE" // a frame over the size limit
  | "UNSUPPORTED_VERSION"
  | "UNKNOWN_COMMAND"
  | "BAD_ARGS"
  | "UNAUTHORIZED" // missing or wrong token
  | "NOT_FOUND" // no such message / domain entry
  | "FAILED" // the daemon tried and could not
  | "TIMEOUT"
  | "UNREACHABLE" // client side: no daemon at the socket path
  | "ALREADY_RUNNING"; // daemon side: another instance owns the socket

/** A typed control-plane error. */
export class ControlError extends Error {
  constructor(message: string, readonly code: ControlErrorCode, options?: ErrorOptions) {
    super(message, options);
    this.name = "ControlError";
  }
}

/** Who sent a request (self-reported; the daemon checks it against /proc). */
export interface ClientIdentity {
  pid: number;
  uid?: number;
  user?: string;
}

/** A request frame. */
export interface ControlRequest {
  version: number;
  id: number;
  command: string;
  args: Record<string, unknown>;
  token?: string;
  client?: ClientIdentity;
}

/** A response frame. */
export type ControlResponse =
  | { version: number; id: number; ok: true; result: unknown; connection?: number }
  | { version: number; id: number; ok: false; error: { code: ControlErrorCode; message: string } };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes one frame. */
export function encodeFrame(value: unknown): Uint8Array {
  const body = encoder.encode(JSON.stringify(value));
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  return frame;
}

/** Writes one frame completely. */
export async function writeFrame(conn: Deno.Conn, value: unknown): Promise<void> {
  const bytes = encodeFrame(value);
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Reads frames from a connection, keeping bytes that arrived early. */
export class FrameReader {
  #pending = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}

  /** Reads exactly n bytes; null on a clean EOF before any byte of it. */
  async #take(n: number): Promise<Uint8Array | null> {
    const out = new Uint8Array(n);
    let have = Math.min(n, this.#pending.length);
    out.set(this.#pending.subarray(0, have));
    this.#pending = this.#pending.subarray(have);
    const chunk = new Uint8Array(Math.min(Math.max(n, 4096), 1 << 20));
    while (have < n) {
      const got = await this.conn.read(chunk);
      if (got === null) {
        if (have === 0) return null;
        throw new ControlError(`connection closed in the middle of a frame (${have} of ${n} bytes)`, "BAD_FRAME");
      }
      const use = Math.min(got, n - have);
      out.set(chunk.subarray(0, use), have);
      have += use;
      if (use < got) this.#pending = chunk.slice(use, got);
    }
    return out;
  }

  /**
   * Reads one frame and parses its JSON. Resolves null on EOF between frames.
   * Throws TOO_LARGE (from the length prefix alone), TIMEOUT or BAD_FRAME.
   */
  async read(options: { maxBytes: number; timeoutMs: number }): Promise<unknown | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ControlError(`no complete frame within ${options.timeoutMs} ms`, "TIMEOUT")),
        options.timeoutMs,
      );
    });
    try {
      return await Promise.race([this.#read(options.maxBytes), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #read(maxBytes: number): Promise<unknown | null> {
    const head = await this.#take(4);
    if (head === null) return null;
    const length = new DataView(head.buffer).getUint32(0);
    if (length > maxBytes) {
      throw new ControlError(`frame of ${length} bytes is over the limit of ${maxBytes} bytes`, "TOO_LARGE");
    }
    const body = await this.#take(length);
    if (body === null) throw new ControlError("connection closed before the frame body", "BAD_FRAME");
    try {
      return JSON.parse(decoder.decode(body));
    } catch {
      throw new ControlError("frame is not valid JSON", "BAD_FRAME");
    }
  }
}
