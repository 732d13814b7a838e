/**
 * PROXY protocol reader (HAProxy spec, versions 1 and 2) for listeners behind a
 * load balancer: {@link parseProxyHeader} is a pure, incremental parser and
 * {@link readProxyHeader} reads exactly one header off a node:net socket, leaving
 * every byte after it in the socket for the next consumer (the SMTP session).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import net from "node:net";
 * import { readProxyHeader } from "./proxy.ts"; // @ts-ignore deno#26900
 *
 * const server = net.createServer();
 * const accepted = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
 * await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
 * const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
 * client.write("PROXY TCP4 192.0.2.1 198.51.100.2 5123 25\r\nEHLO x\r\n");
 * const socket = await accepted;
 * const info = await readProxyHeader(socket, 10_000); // "EHLO x\r\n" stays in the socket
 * assert.equal(info.command === "proxy" && `${info.sourceAddress}:${info.sourcePort}`, "192.0.2.1:5123");
 * socket.destroy();
 * client.destroy();
 * await new Promise((resolve) => server.close(resolve));
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import type { Socket } from "node:net";

/** What a PROXY header says about the connection. */
export interface ProxyInfo {
  version: 1 | 2;
  /** "local": health check or proxy's own connection; use the real socket endpoints. */
  command: "proxy" | "local";
  /** "unknown" carries no addresses (v1 UNKNOWN, v2 LOCAL/UNSPEC/UDP/UNIX). */
  family: "tcp4" | "tcp6" | "unknown";
  sourceAddress?: string;
  sourcePort?: number;
  destAddress?: string;
  destPort?: number;
}

/** Result of {@link parseProxyHeader}. */
export type ProxyParseResult =
  | { status: "incomplete" }
  | { status: "ok"; info: ProxyInfo; consumed: number };

/** Error codes of {@link ProxyProtocolError}. */
export type ProxyErrorCode = "PROXY_INVALID" | "PROXY_TIMEOUT" | "PROXY_CLOSED";

/** A malformed header, or a socket that timed out or closed before sending one. */
export class ProxyProtocolError extends Error {
  constructor(readonly code: ProxyErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProxyProtocolError";
  }
}

/** The 12-byte v2 signature: 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A. */
const V2_SIGNATURE = new TextEncoder().encode("\r\n\r\n\0\r\nQUIT\n");

/** Spec limit for a v1 line, CRLF included. */
export const PROXY_V1_MAX_LENGTH = 107;
/** Longest v2 address block plus TLVs accepted (16-byte fixed part not included). */
export const PROXY_V2_MAX_PAYLOAD = 536;

const V1_PREFIX = Uint8Array.from("PROXY ", (c) => c.charCodeAt(0));
const V2_FIXED = 16;
const CR = 0x0d;
const LF = 0x0a;

function invalid(message: string): never {
  throw new ProxyProtocolError("PROXY_INVALID", message);
}

/** True when the first min(buf, sig) bytes of `buf` equal those of `sig`. */
function startsLike(buf: Uint8Array, sig: Uint8Array): boolean {
  const n = Math.min(buf.length, sig.length);
  for (let i = 0; i < n; i++) if (buf[i] !== sig[i]) return false;
  return true;
}

/**
 * Parses a PROXY protocol v1 or v2 header at the start of `buf`.
 *
 * Returns `{ status: "incomplete" }` while `buf` is a valid prefix of a header,
 * `{ status: "ok", info, consumed }` once it holds a whole one (`consumed` is the
 * header length; any bytes after it belong to the proxied stream), and throws a
 * {@link ProxyProtocolError} with code "PROXY_INVALID" as soon as the bytes seen
 * cannot start a valid header.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseProxyHeader } from "./proxy.ts"; // @ts-ignore deno#26900
 *
 * const r = parseProxyHeader(new TextEncoder().encode("PROXY TCP4 192.0.2.1 198.51.100.2 5123 25\r\nEHLO x\r\n"));
 * assert.equal(r.status, "ok");
 * if (r.status === "ok") {
 *   assert.equal(r.consumed, 43); // EHLO starts here
 *   assert.equal(r.info.sourceAddress, "192.0.2.1");
 *   assert.equal(r.info.sourcePort, 5123);
 * }
 * ```
 */
export function parseProxyHeader(buf: Uint8Array): ProxyParseResult {
  if (buf.length === 0) return { status: "incomplete" };
  if (startsLike(buf, V2_SIGNATURE)) return parseV2(buf);
  if (startsLike(buf, V1_PREFIX)) return parseV1(buf);
  return invalid("not a PROXY protocol header");
}

// ---------------------------------------------------------------- v1

const IPV4_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const IPV4_RE = new RegExp(`^${IPV4_OCTET}(?:\\.${IPV4_OCTET}){3}$`);
const PORT_RE = /^[0-9]{1,5}$/;

function parseV1(buf: Uint8Array): ProxyParseResult {
  const limit = Math.min(buf.length, PROXY_V1_MAX_LENGTH);
  let lf = -1;
  for (let i = 0; i < limit; i++) {
    if (buf[i] === LF) {
      lf = i;
      break;
    }
  }
  if (lf < 0) {
    if (buf.length >= PROXY_V1_MAX_LENGTH) invalid(`v1 header longer than ${PROXY_V1_MAX_LENGTH} bytes`);
    return { status: "incomplete" };
  }
  if (lf === 0 || buf[lf - 1] !== CR) invalid("v1 header line does not end in CRLF");
  const consumed = lf + 1;
  let line = "";
  for (let i = 0; i < lf - 1; i++) {
    const b = buf[i]!; // i < lf < buf.length
    if (b < 0x20 || b > 0x7e) invalid(`v1 header contains byte 0x${b.toString(16).padStart(2, "0")}`);
    line += String.fromCharCode(b);
  }
  const fields = line.split(" ");
  const proto = fields[1];
  if (proto === "UNKNOWN") {
    // The spec says to ignore whatever follows UNKNOWN up to the CRLF.
    return { status: "ok", consumed, info: { version: 1, command: "proxy", family: "unknown" } };
  }
  if (proto !== "TCP4" && proto !== "TCP6") invalid(`v1 protocol must be TCP4, TCP6 or UNKNOWN, got "${proto}"`);
  if (fields.length !== 6) {
    invalid(`v1 header must be "PROXY ${proto} <src> <dst> <sport> <dport>", got ${fields.length} fields`);
  }
  const [, , src, dst, sport, dport] = fields as [string, string, string, string, string, string]; // 6 fields
  const family = proto === "TCP4" ? "tcp4" : "tcp6";
  const address = (text: string, what: string): string => {
    if (family === "tcp4") {
      if (!IPV4_RE.test(text)) invalid(`v1 ${what} address "${text}" is not an IPv4 address`);
      return text;
    }
    const bytes = parseIpv6(text);
    if (!bytes) invalid(`v1 ${what} address "${text}" is not an IPv6 address`);
    return formatIpv6(bytes);
  };
  const port = (text: string, what: string): number => {
    const n = PORT_RE.test(text) ? Number(text) : NaN;
    if (!(n <= 65535)) invalid(`v1 ${what} port "${text}" is not a port number (0-65535)`);
    return n;
  };
  return {
    status: "ok",
    consumed,
    info: {
      version: 1,
      command: "proxy",
      family,
      sourceAddress: address(src, "source"),
      destAddress: address(dst, "destination"),
      sourcePort: port(sport, "source"),
      destPort: port(dport, "destination"),
    },
  };
}

// ---------------------------------------------------------------- v2

function parseV2(buf: Uint8Array): ProxyParseResult {
  if (buf.length < 13) return { status: "incomplete" };
  const verCmd = buf[12]!; // length checked above
  if (verCmd >> 4 !== 2) invalid(`v2 version must be 2, got ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) invalid(`v2 command must be 0 (LOCAL) or 1 (PROXY), got ${cmd}`);
  if (buf.length < V2_FIXED) return { status: "incomplete" };
  const famProto = buf[13]!; // length >= V2_FIXED from here
  const len = (buf[14]! << 8) | buf[15]!;
  if (len > PROXY_V2_MAX_PAYLOAD) invalid(`v2 header length ${len} exceeds ${PROXY_V2_MAX_PAYLOAD}`);
  const consumed = V2_FIXED + len;
  if (buf.length < consumed) return { status: "incomplete" };
  if (cmd === 0) {
    // LOCAL: the spec says to discard the address block, family included.
    return { status: "ok", consumed, info: { version: 2, command: "local", family: "unknown" } };
  }
  const body = buf.subarray(V2_FIXED, consumed);
  // Callers read only offsets inside the address block whose length was checked.
  const port = (at: number) => (body[at]! << 8) | body[at + 1]!;
  if (famProto === 0x11) {
    if (len < 12) invalid(`v2 TCP over IPv4 needs 12 address bytes, header length is ${len}`);
    return {
      status: "ok",
      consumed,
      info: {
        version: 2,
        command: "proxy",
        family: "tcp4",
        sourceAddress: body.subarray(0, 4).join("."),
        destAddress: body.subarray(4, 8).join("."),
        sourcePort: port(8),
        destPort: port(10),
      },
    };
  }
  if (famProto === 0x21) {
    if (len < 36) invalid(`v2 TCP over IPv6 needs 36 address bytes, header length is ${len}`);
    return {
      status: "ok",
      consumed,
      info: {
        version: 2,
        command: "proxy",
        family: "tcp6",
        sourceAddress: formatIpv6(body.subarray(0, 16)),
        destAddress: formatIpv6(body.subarray(16, 32)),
        sourcePort: port(32),
        destPort: port(34),
      },
    };
  }
  // UNSPEC, UDP, UNIX sockets and anything newer: no usable TCP addresses.
  return { status: "ok", consumed, info: { version: 2, command: "proxy", family: "unknown" } };
}

// ---------------------------------------------------------------- IPv6 text

/** Parses IPv6 text (with "::" and an optional trailing dotted quad) into 16 bytes. */
function parseIpv6(text: string): Uint8Array | undefined {
  let groups: number[] | undefined;
  const parts = text.split("::");
  if (parts.length > 2) return undefined;
  const toGroups = (s: string, last: boolean): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    const items = s.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!; // i < items.length
      if (last && i === items.length - 1 && item.includes(".")) {
        if (!IPV4_RE.test(item)) return undefined;
        const [a, b, c, d] = item.split(".").map(Number) as [number, number, number, number]; // IPV4_RE matched
        out.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) {
        out.push(parseInt(item, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  if (parts.length === 1) {
    groups = toGroups(parts[0]!, true); // split() returns at least one part
    if (!groups || groups.length !== 8) return undefined;
  } else {
    const head = toGroups(parts[0]!, false); // two parts here
    const tail = toGroups(parts[1]!, true);
    if (!head || !tail) return undefined;
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  }
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

/**
 * Formats 16 bytes as RFC 5952 text: lowercase, no leading zeros, the longest run
 * (first on a tie) of two or more zero groups as "::"; IPv4-mapped addresses as
 * "::ffff:a.b.c.d" (the form node:net reports them in).
 */
function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!); // 16 bytes
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes.subarray(12, 16).join(".")}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

// ---------------------------------------------------------------- socket

/**
 * Reads one PROXY header from `socket`. On success the socket is left paused with
 * every byte after the header pushed back (`unshift`) for the next reader, which
 * must resume it (`pipe()` does). Rejects with a {@link ProxyProtocolError}:
 * "PROXY_INVALID" for a malformed header, "PROXY_TIMEOUT" when no whole header
 * arrived within `timeoutMs`, "PROXY_CLOSED" when the socket ended, closed or
 * failed first. The socket is never destroyed here, and every listener added is
 * removed before the promise settles.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import net from "node:net";
 * import { readProxyHeader } from "./proxy.ts"; // @ts-ignore deno#26900
 *
 * const handedOver = Promise.withResolvers<string>(); // smtp.connect(socket, { remoteAddress }) in the listener
 * const server = net.createServer(async (socket) => {
 *   try {
 *     const info = await readProxyHeader(socket, 10_000);
 *     socket.once("data", (rest) => {
 *       handedOver.resolve(`${info.sourceAddress} ${rest}`);
 *       socket.destroy();
 *     }).resume(); // the next reader resumes it (pipe() does)
 *   } catch {
 *     socket.destroy();
 *   }
 * });
 * await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
 * const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
 * client.write("PROXY TCP4 192.0.2.1 198.51.100.2 5123 25\r\nEHLO x\r\n");
 * assert.equal(await handedOver.promise, "192.0.2.1 EHLO x\r\n");
 * client.destroy();
 * await new Promise((resolve) => server.close(resolve));
 * ```
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyInfo> {
  return new Promise<ProxyInfo>((resolve, reject) => {
    if (socket.destroyed || socket.readableEnded) {
      reject(new ProxyProtocolError("PROXY_CLOSED", "connection closed before the PROXY header"));
      return;
    }
    let buffered: Uint8Array = new Uint8Array(0);
    const finish = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("close", onClose);
      socket.off("error", onError);
      socket.pause();
    };
    const fail = (err: ProxyProtocolError) => {
      finish();
      reject(err);
    };
    const onData = (chunk: Uint8Array | string) => {
      const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
      if (buffered.length === 0) {
        buffered = bytes;
      } else {
        const joined = new Uint8Array(buffered.length + bytes.length);
        joined.set(buffered);
        joined.set(bytes, buffered.length);
        buffered = joined;
      }
      let result: ProxyParseResult;
      try {
        result = parseHeaderOrWrap(buffered);
      } catch (err) {
        return fail(err as ProxyProtocolError);
      }
      if (result.status === "incomplete") return;
      finish();
      if (result.consumed < buffered.length) socket.unshift(Buffer.from(buffered.subarray(result.consumed)));
      resolve(result.info);
    };
    const closed = (why: string) => () =>
      fail(new ProxyProtocolError("PROXY_CLOSED", `connection ${why} before the PROXY header was complete`));
    const onEnd = closed("ended");
    const onClose = closed("closed");
    const onError = (err: Error) =>
      fail(
        new ProxyProtocolError("PROXY_CLOSED", `connection failed before the PROXY header: ${err.message}`, {
          cause: err,
        }),
      );
    const timer = setTimeout(
      () => fail(new ProxyProtocolError("PROXY_TIMEOUT", `no complete PROXY header within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("close", onClose);
    socket.on("error", onError);
    socket.resume();
  });
}

/** parseProxyHeader, with anything unexpected turned into PROXY_INVALID. */
function parseHeaderOrWrap(buf: Uint8Array): ProxyParseResult {
  try {
    return parseProxyHeader(buf);
  } catch (err) {
    if (err instanceof ProxyProtocolError) throw err;
    throw new ProxyProtocolError("PROXY_INVALID", `bad PROXY header: ${(err as Error).message}`, { cause: err });
  }
}
