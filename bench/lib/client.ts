/**
 * SMTP clients for the benchmarks, on raw Deno TCP and bytes (cheap on CPU):
 * - {@link loadRun}: N sessions sending messages flat out or at an offered rate,
 *   timing each transaction from MAIL FROM to the final reply after DATA ("accept
 *   latency"), like a sending MTA sees it;
 * - {@link IdleSession}: connects, says EHLO, then waits; notices when the server hangs up;
 * - {@link Slowloris}: sends a byte every few seconds (in a command or in DATA) and
 *   records when the server cut it off.
 * @module
 */
import { messageText, percentile, sleep } from "./common.ts";

const encoder = new TextEncoder();
const CRLF_DOT = encoder.encode(".\r\n");

/** One SMTP connection reading replies from a byte buffer. */
export class Conn {
  #buf = new Uint8Array(4096);
  #len = 0;
  closed = false;
  closedAt = 0;
  private constructor(readonly conn: Deno.TcpConn) {}

  static async open(port: number, host = "127.0.0.1"): Promise<Conn> {
    const conn = await Deno.connect({ hostname: host, port });
    conn.setNoDelay(true);
    return new Conn(conn);
  }

  /** Reads one complete (possibly multi-line) reply; returns its code, or 0 at EOF. */
  async reply(): Promise<{ code: number; text: string }> {
    while (true) {
      // Look for the last line of a reply: "ddd " … CRLF.
      let start = 0;
      for (let i = 0; i + 1 < this.#len; i++) {
        if (this.#buf[i] !== 13 || this.#buf[i + 1] !== 10) continue;
        if (this.#buf[start + 3] !== 45 /* - */) {
          const text = new TextDecoder().decode(this.#buf.subarray(0, i));
          this.#buf.copyWithin(0, i + 2, this.#len);
          this.#len -= i + 2;
          const last = text.slice(text.lastIndexOf("\n") + 1);
          return { code: Number(last.slice(0, 3)), text };
        }
        start = i + 2;
      }
      if (this.#len === this.#buf.length) {
        const bigger = new Uint8Array(this.#buf.length * 2);
        bigger.set(this.#buf);
        this.#buf = bigger;
      }
      let n: number | null = null;
      try {
        n = await this.conn.read(this.#buf.subarray(this.#len));
      } catch {
        n = null;
      }
      if (n === null) {
        this.markClosed();
        return { code: 0, text: "" };
      }
      this.#len += n;
    }
  }

  markClosed() {
    if (!this.closed) {
      this.closed = true;
      this.closedAt = performance.now();
    }
  }

  async write(bytes: Uint8Array): Promise<boolean> {
    try {
      let off = 0;
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
      return true;
    } catch {
      this.markClosed();
      return false;
    }
  }

  async cmd(line: string): Promise<{ code: number; text: string }> {
    if (!await this.write(encoder.encode(line + "\r\n"))) return { code: 0, text: "" };
    return await this.reply();
  }

  close() {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
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
    let c: Conn | undefined;
    const connect = async () => {
      c = await Conn.open(o.port);
      const banner = await c.reply();
      if (banner.code !== 220) throw new Error(`banner: ${banner.text}`);
      const ehlo = await c.cmd("EHLO load.bench.test");
      if (ehlo.code !== 250) throw new Error(`EHLO: ${ehlo.text}`);
    };
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
        if (!c || c.closed) await connect();
        const start = performance.now();
        let r = await c!.cmd("MAIL FROM:<bench@example.com>");
        if (r.code !== 250) throw new Error(`MAIL: ${r.text}`);
        for (const line of rcpts) {
          r = await c!.cmd(line);
          if (r.code !== 250) throw new Error(`RCPT: ${r.text}`);
        }
        r = await c!.cmd("DATA");
        if (r.code !== 354) throw new Error(`DATA: ${r.text}`);
        await c!.write(body);
        await c!.write(CRLF_DOT);
        r = await c!.reply();
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
      await c.cmd("QUIT");
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
  private constructor(readonly c: Conn, readonly openedAt: number) {}

  /** Connects and says EHLO; throws when the server refuses (code other than 220/250). */
  static async open(port: number): Promise<IdleSession> {
    const c = await Conn.open(port);
    const openedAt = performance.now();
    const banner = await c.reply();
    if (banner.code !== 220) {
      c.close();
      throw new Error(`refused: ${banner.text || "connection closed"}`);
    }
    const ehlo = await c.cmd("EHLO idle.bench.test");
    if (ehlo.code !== 250) {
      c.close();
      throw new Error(`EHLO: ${ehlo.text || "connection closed"}`);
    }
    const s = new IdleSession(c, openedAt);
    // Whatever the server says next (a 421 timeout) ends the session: read until EOF.
    void (async () => {
      while (!c.closed) await c.reply();
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
  private constructor(readonly c: Conn, readonly mode: SlowMode) {}

  static async open(port: number, mode: SlowMode, everyMs: number): Promise<Slowloris> {
    const c = await Conn.open(port);
    if ((await c.reply()).code !== 220) throw new Error("slowloris refused");
    if (mode === "data") {
      await c.cmd("EHLO slow.bench.test");
      await c.cmd("MAIL FROM:<slow@example.com>");
      await c.cmd("RCPT TO:<slow@example.net>");
      if ((await c.cmd("DATA")).code !== 354) throw new Error("slowloris: DATA refused");
    }
    const s = new Slowloris(c, mode);
    void (async () => {
      while (!c.closed) await c.reply();
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
