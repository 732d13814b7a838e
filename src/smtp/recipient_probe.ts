/**
 * Recipient verification against the final hop (Postfix `reject_unverified_recipient`): a
 * probe session `LHLO`/`EHLO`, `MAIL FROM:<>`, `RCPT TO:<address>`, `QUIT` over LMTP or SMTP,
 * by TCP or a Unix socket, with no message sent. The answer is cached: known addresses for
 * `positiveTtlMs`, unknown ones for `negativeTtlMs`; a temporary answer or a connection failure
 * is not cached and reads as "tempfail", so the client is told to try again later (450).
 * Concurrent probes for one address share one session.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRecipientProbe, parseProbeTarget } from "./recipient_probe.ts"; // @ts-ignore deno#26900
 *
 * const probe = createRecipientProbe({
 *   target: parseProbeTarget("lmtp:127.0.0.1:24"),
 *   helo: "mx.example.com",
 *   positiveTtlMs: 86_400_000,
 *   negativeTtlMs: 600_000,
 *   timeoutMs: 10_000,
 * });
 * assert.equal(probe.cached("alice@example.com"), undefined); // until check() has asked the server
 * assert.equal(probe.size, 0);
 * ```
 * @module
 */

/** Where probes go. */
export interface ProbeTarget {
  protocol: "lmtp" | "smtp";
  connect: Deno.ConnectOptions | Deno.UnixConnectOptions;
  label: string;
}

/** The verdict of a probe. */
export interface ProbeResult {
  verdict: "known" | "unknown" | "tempfail";
  /** The final hop's reply to RCPT (or the connection error). */
  reply: string;
  cached: boolean;
}

/** The probe with its cache. */
export interface RecipientProbe {
  check(address: string): Promise<ProbeResult>;
  /** The cached verdict, if any and not expired. */
  cached(address: string): ProbeResult | undefined;
  readonly size: number;
}

/** Options for {@link createRecipientProbe}. */
export interface RecipientProbeOptions {
  target: ProbeTarget;
  helo: string;
  positiveTtlMs: number;
  negativeTtlMs: number;
  timeoutMs: number;
  /** Cache bound (oldest entries are dropped first); default 100,000. */
  maxEntries?: number;
  now?: () => number;
}

/** A bad `verify` value. */
export class ProbeTargetError extends Error {
  readonly code = "PROBE_TARGET_INVALID";
  constructor(message: string) {
    super(message);
    this.name = "ProbeTargetError";
  }
}

/** Parses "lmtp:unix:/path", "lmtp:host:port", "smtp:host:port" (IPv6 as "[::1]:24"). */
export function parseProbeTarget(text: string): ProbeTarget {
  const m = /^(lmtp|smtp):(.+)$/.exec(text);
  if (!m) throw new ProbeTargetError(`"${text}": expected "lmtp:unix:/path", "lmtp:host:port" or "smtp:host:port"`);
  const protocol = m[1] as "lmtp" | "smtp";
  const rest = m[2] ?? "";
  if (rest.startsWith("unix:")) {
    const path = rest.slice(5);
    if (!path) throw new ProbeTargetError(`"${text}": the unix socket path is empty`);
    return { protocol, connect: { transport: "unix", path }, label: text };
  }
  const hp = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(rest);
  const port = Number(hp?.[2]);
  if (!hp || !hp[1] || port < 1 || port > 65535) {
    throw new ProbeTargetError(`"${text}": expected host:port with a port from 1 to 65535`);
  }
  return { protocol, connect: { hostname: hp[1], port }, label: text };
}

/** Creates a caching probe. */
export function createRecipientProbe(options: RecipientProbeOptions): RecipientProbe {
  const now = options.now ?? Date.now;
  const max = options.maxEntries ?? 100_000;
  const cache = new Map<string, { result: ProbeResult; until: number }>();
  const inFlight = new Map<string, Promise<ProbeResult>>();

  function cached(address: string): ProbeResult | undefined {
    const key = address.toLowerCase();
    const hit = cache.get(key);
    if (!hit) return undefined;
    if (hit.until <= now()) {
      cache.delete(key);
      return undefined;
    }
    return { ...hit.result, cached: true };
  }

  async function probe(address: string): Promise<ProbeResult> {
    const result = await probeOnce(options, address);
    const ttl = result.verdict === "known"
      ? options.positiveTtlMs
      : result.verdict === "unknown"
      ? options.negativeTtlMs
      : 0;
    if (ttl > 0) {
      const key = address.toLowerCase();
      cache.delete(key);
      cache.set(key, { result, until: now() + ttl });
      if (cache.size > max) cache.delete(cache.keys().next().value!);
    }
    return result;
  }

  return {
    cached,
    get size() {
      return cache.size;
    },
    check(address) {
      const hit = cached(address);
      if (hit) return Promise.resolve(hit);
      const key = address.toLowerCase();
      let running = inFlight.get(key);
      if (!running) {
        running = probe(address).finally(() => inFlight.delete(key));
        inFlight.set(key, running);
      }
      return running;
    },
  };
}

const encoder = new TextEncoder();

/** One probe session. Never throws: failures are "tempfail". */
async function probeOnce(options: RecipientProbeOptions, address: string): Promise<ProbeResult> {
  const deadline = AbortSignal.timeout(options.timeoutMs);
  let conn: Deno.Conn | undefined;
  try {
    conn = await Deno.connect(options.target.connect as Deno.ConnectOptions);
    const reader = replyReader(conn, deadline);
    const expect = async (ok: (code: number) => boolean, step: string) => {
      const reply = await reader();
      if (!ok(reply.code)) throw new ProbeStepError(step, reply);
      return reply;
    };
    const send = (line: string) => conn!.write(encoder.encode(line + "\r\n"));
    await expect((c) => c === 220, "greeting");
    await send(`${options.target.protocol === "lmtp" ? "LHLO" : "EHLO"} ${options.helo}`);
    await expect((c) => c === 250, "LHLO/EHLO");
    await send("MAIL FROM:<>");
    await expect((c) => c === 250, "MAIL FROM");
    await send(`RCPT TO:<${address}>`);
    const rcpt = await reader();
    await send("QUIT").then(reader).catch(() => {}); // wait for the 221, so the peer sees a clean close
    const verdict = rcpt.code >= 200 && rcpt.code < 300 ? "known" : rcpt.code >= 500 ? "unknown" : "tempfail";
    return { verdict, reply: rcpt.text, cached: false };
  } catch (error) {
    const reply = error instanceof ProbeStepError
      ? `${error.step}: ${error.reply.text}`
      : `${options.target.label}: ${error instanceof Error ? error.message : String(error)}`;
    return { verdict: "tempfail", reply, cached: false };
  } finally {
    try {
      conn?.close();
    } catch { /* already closed */ }
  }
}

interface Reply {
  code: number;
  text: string;
}

class ProbeStepError extends Error {
  constructor(readonly step: string, readonly reply: Reply) {
    super(`${step}: ${reply.text}`);
  }
}

/** Reads complete (possibly multi-line) replies from a connection. */
function replyReader(conn: Deno.Conn, signal: AbortSignal): () => Promise<Reply> {
  const decoder = new TextDecoder();
  let buffer = "";
  const chunk = new Uint8Array(4096);
  const aborted = new Promise<never>((_, reject) => {
    const fail = () => reject(new Error("timed out"));
    if (signal.aborted) fail();
    signal.addEventListener("abort", fail, { once: true });
  });
  aborted.catch(() => {});
  return async () => {
    const lines: string[] = [];
    while (true) {
      const nl = buffer.indexOf("\n");
      if (nl >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        if (!/^\d{3}-/.test(line)) {
          const code = Number(line.slice(0, 3));
          if (!Number.isInteger(code) || code < 200) throw new Error(`bad reply: ${line.slice(0, 100)}`);
          return { code, text: lines.join(" / ") };
        }
        if (lines.length > 100) throw new Error("reply too long");
        continue;
      }
      if (buffer.length > 16_384) throw new Error("reply line too long");
      const n = await Promise.race([conn.read(chunk), aborted]);
      if (n === null) throw new Error("connection closed");
      buffer += decoder.decode(chunk.subarray(0, n), { stream: true });
    }
  };
}
