/**
 * SMTP load for the benchmarks, on the shared raw client ({@link SmtpClient}):
 * - {@link openSession} and {@link transaction}: one session and one timed message on it;
 * - {@link loadRun}: N sessions sending messages flat out or at an offered rate,
 *   timing each transaction from MAIL FROM to the final reply after DATA ("accept
 *   latency"), like a sending MTA sees it;
 * - {@link IdleSession}: connects, says EHLO, then waits; notices when the server hangs up;
 * - {@link Slowloris}: sends a byte every few seconds (in a command or in DATA) and
 *   records when the server cut it off.
 * @module
 */
import { type Reply, SmtpClient } from "../../testing/smtp_client.ts";
import { messageText, percentile, sleep } from "./common.ts";

const encoder = new TextEncoder();
const CRLF_DOT = encoder.encode(".\r\n");

/** Connects, reads the greeting and says EHLO; throws unless both get the expected reply. */
export async function openSession(port: number, helo = "bench.test"): Promise<SmtpClient> {
  const c = await SmtpClient.connect(port);
  const greeting = await c.tryReply();
  if (greeting.code !== 220) {
    c.close();
    throw new Error(`greeting: ${greeting.text || "connection closed"}`);
  }
  const ehlo = await c.tryCmd(`EHLO ${helo}`);
  if (ehlo.code !== 250) {
    c.close();
    throw new Error(`EHLO: ${ehlo.text || "connection closed"}`);
  }
  return c;
}

/** Sends one message on an open session; returns the final reply and the time from MAIL FROM to it. */
export async function transaction(
  c: SmtpClient,
  data: Uint8Array,
  rcpt = "sink@example.net",
): Promise<{ reply: Reply; ms: number }> {
  const t0 = performance.now();
  for (const line of ["MAIL FROM:<bench@example.com>", `RCPT TO:<${rcpt}>`]) {
    const r = await c.tryCmd(line);
    if (r.code !== 250) return { reply: r, ms: performance.now() - t0 };
  }
  const r = await c.tryCmd("DATA");
  if (r.code !== 354) return { reply: r, ms: performance.now() - t0 };
  await c.write(data);
  await c.write(CRLF_DOT);
  return { reply: await c.tryReply(), ms: performance.now() - t0 };
}

/** Options for {@link loadRun}. */
export interface LoadOptions {
  port: number;
  /** Messages to send in all. */
  messages: number;
  sessions: number;
  /** Message size in octets, headers included. */
  size: number;
  recipients?: number;
  /** Recipient domain (default example.net); recipients are r1@…, r2@…. */
  domain?: string;
  /** Offered rate in messages/second over all sessions; 0 or absent = flat out. */
  rate?: number;
  /** Stop after this long even if not all messages were sent. */
  maxSeconds?: number;
}

/** What {@link loadRun} measured. */
export interface LoadResult {
  sent: number;
  errors: number;
  /** First error reply or exception. */
  firstError?: string;
  seconds: number;
  rate: number;
  /** Accept latency (MAIL FROM … final 250), ms, ascending. */
  latencies: number[];
  p50: number;
  p99: number;
  max: number;
  /** With an offered rate: latency counted from the scheduled send time (includes queueing behind a slow reply). */
  p99FromSchedule?: number;
}

/** Sends messages over `sessions` connections and times every transaction. */
export async function loadRun(o: LoadOptions): Promise<LoadResult> {
  const body = encoder.encode(messageText(o.size)); // ends with CRLF, no line starts with "."
  const rcpts = Array.from({ length: o.recipients ?? 1 }, (_, i) => `RCPT TO:<r${i + 1}@${o.domain ?? "example.net"}>`);
  const latencies: number[] = [];
  const fromSchedule: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const interval = o.rate ? (1000 * o.sessions) / o.rate : 0;
  const t0 = performance.now();
  const deadline = o.maxSeconds ? t0 + o.maxSeconds * 1000 : Infinity;
  const fail = (what: string) => {
    errors++;
    firstError ??= what;
  };
  await Promise.all(Array.from({ length: o.sessions }, async (_, s) => {
    let c: SmtpClient | undefined;
    let due = t0 + (interval * s) / o.sessions;
    while (next < o.messages && performance.now() < deadline) {
      next++;
      if (interval > 0) {
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
      }
      const scheduled = interval > 0 ? due : performance.now();
      due += interval;
      try {
        if (!c || c.closed) c = await openSession(o.port, "load.bench.test");
        const start = performance.now();
        let r = await c.tryCmd("MAIL FROM:<bench@example.com>");
        if (r.code !== 250) throw new Error(`MAIL: ${r.text}`);
        for (const line of rcpts) {
          r = await c.tryCmd(line);
          if (r.code !== 250) throw new Error(`RCPT: ${r.text}`);
        }
        r = await c.tryCmd("DATA");
        if (r.code !== 354) throw new Error(`DATA: ${r.text}`);
        await c.write(body);
        await c.write(CRLF_DOT);
        r = await c.tryReply();
        if (r.code !== 250) throw new Error(`end of data: ${r.text || "connection closed"}`);
        const end = performance.now();
        latencies.push(end - start);
        if (interval > 0) fromSchedule.push(end - scheduled);
      } catch (err) {
        fail((err as Error).message);
        c?.close();
        c = undefined;
        await sleep(50);
      }
    }
    if (c && !c.closed) {
      await c.tryCmd("QUIT");
      c.close();
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  fromSchedule.sort((a, b) => a - b);
  return {
    sent: latencies.length,
    errors,
    firstError,
    seconds,
    rate: latencies.length / seconds,
    latencies,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? NaN,
    p99FromSchedule: interval > 0 ? percentile(fromSchedule, 99) : undefined,
  };
}

/** A session that said EHLO and now waits; `closed` flips when the server hangs up. */
export class IdleSession {
  private constructor(readonly c: SmtpClient, readonly openedAt: number) {}

  /** Connects and says EHLO; throws when the server refuses (code other than 220/250). */
  static async open(port: number): Promise<IdleSession> {
    const c = await SmtpClient.connect(port);
    const openedAt = performance.now();
    const banner = await c.tryReply();
    if (banner.code !== 220) {
      c.close();
      throw new Error(`refused: ${banner.text || "connection closed"}`);
    }
    const ehlo = await c.tryCmd("EHLO idle.bench.test");
    if (ehlo.code !== 250) {
      c.close();
      throw new Error(`EHLO: ${ehlo.text || "connection closed"}`);
    }
    const s = new IdleSession(c, openedAt);
    // Whatever the server says next (a 421 timeout) ends the session: read until EOF.
    void (async () => {
      while (!c.closed) await c.tryReply();
    })();
    return s;
  }

  get closed() {
    return this.c.closed;
  }

  close() {
    this.c.close();
  }
}

/** How a {@link Slowloris} misbehaves. */
export type SlowMode = "command" | "data";

/**
 * Sends one byte every `everyMs`: either an endless command line ("command") or, after
 * MAIL/RCPT/DATA, an endless message body ("data"). Stops when the server closes.
 */
export class Slowloris {
  bytes = 0;
  readonly openedAt = performance.now();
  #stop = false;
  private constructor(readonly c: SmtpClient, readonly mode: SlowMode) {}

  static async open(port: number, mode: SlowMode, everyMs: number): Promise<Slowloris> {
    const c = await SmtpClient.connect(port);
    if ((await c.tryReply()).code !== 220) throw new Error("slowloris refused");
    if (mode === "data") {
      await c.tryCmd("EHLO slow.bench.test");
      await c.tryCmd("MAIL FROM:<slow@example.com>");
      await c.tryCmd("RCPT TO:<slow@example.net>");
      if ((await c.tryCmd("DATA")).code !== 354) throw new Error("slowloris: DATA refused");
    }
    const s = new Slowloris(c, mode);
    void (async () => {
      while (!c.closed) await c.tryReply();
    })();
    void (async () => {
      // A line that never ends: the server never sees a complete command (or body line).
      const byte = new Uint8Array([mode === "data" ? 120 : 78]); // "x" / "N"
      while (!s.#stop && !c.closed) {
        await sleep(everyMs);
        if (s.#stop || c.closed) break;
        if (await c.write(byte)) s.bytes++;
      }
    })();
    return s;
  }

  get closed() {
    return this.c.closed;
  }

  /** Seconds from connect to the server's hang-up (NaN while open). */
  get lifetime() {
    return this.c.closed ? (this.c.closedAt - this.openedAt) / 1000 : NaN;
  }

  close() {
    this.#stop = true;
    this.c.close();
  }
}
