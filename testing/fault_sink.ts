/**
 * Runs testing/fault_sink.py (aiosmtpd) as a subprocess: a real SMTP server
 * that injects scripted faults (replies, disconnects, stalls, broken STARTTLS) and
 * records every message it took and every fault it injected. See fault_sink.py for
 * the script format. Also {@link faultPlans}: seeded random fault plans.
 */
import { join } from "node:path";
import { startProcess } from "./process.ts";

/** A message the sink took (received.jsonl). */
export interface FaultSinkMessage {
  /** Local part of MAIL FROM ("" for the null sender). */
  key: string;
  mail_from: string;
  rcpt_tos: string[];
  /** The X-Test-Id header field's value. */
  test_id: string | null;
  tls: boolean;
  conn: number;
  /** The transaction number of this key at the sink. */
  attempt: number;
  at: number;
  /** The message, with `keep_data`. */
  data?: string;
}

/** How one connection ended (closes.jsonl). */
export interface FaultSinkClose {
  conn: number;
  how: "reset" | "eof";
  /** Unix time, seconds. */
  at: number;
}

/** A transaction start or an injected fault (events.jsonl). */
export interface FaultSinkEvent {
  conn: number;
  key: string | null;
  attempt: number;
  /** "transaction" (action = the planned fault), or the stage a fault hit. */
  stage: string;
  action: string;
  at: number;
}

/** The sink's script. */
export interface FaultScript {
  plans?: Record<string, string[]>;
  connections?: string[];
  stall_seconds?: number;
  tls_cert?: string;
  tls_key?: string;
  starttls?: "ok" | "broken";
  /** Record each message's data too. */
  keep_data?: boolean;
}

/** A running fault sink (`await using` stops it). */
export interface FaultSink extends AsyncDisposable {
  host: string;
  port: number;
  messages(): Promise<FaultSinkMessage[]>;
  events(): Promise<FaultSinkEvent[]>;
  /**
   * How each connection ended (closes.jsonl): `reset` when the peer's kernel answered with a
   * reset, i.e. the peer closed (or died) with data of ours still unread in its socket.
   */
  closes(): Promise<FaultSinkClose[]>;
  stop(): Promise<void>;
}

const PY = "/usr/bin/python3";
const SCRIPT = new URL("./fault_sink.py", import.meta.url).pathname;

/** The port of a Python sink's `PORT <n>` line. */
export function readyPort(line: string): number {
  return Number(/PORT (\d+)/.exec(line)?.[1]);
}

async function readJsonl<T>(path: string): Promise<T[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  // A line being written may be incomplete: only whole lines count.
  return text.split("\n").filter((l, i, all) => l && (i < all.length - 1 || text.endsWith("\n"))).map((l) =>
    JSON.parse(l) as T
  );
}

/** Starts a sink on 127.0.0.1 and an ephemeral port. */
export async function startFaultSink(script: FaultScript = {}): Promise<FaultSink> {
  const dir = await Deno.makeTempDir({ prefix: "empath-fault-sink-" });
  const configPath = join(dir, "script.json");
  await Deno.writeTextFile(configPath, JSON.stringify(script));
  const proc = await startProcess({
    cmd: PY,
    name: "fault sink",
    args: [SCRIPT, "--host", "127.0.0.1", "--port", "0", "--out", dir, "--config", configPath],
    ready: /^PORT \d+/,
  }).catch(async (err) => {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  });
  const stop = async () => {
    await proc.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    host: "127.0.0.1",
    port: readyPort(await proc.waitForLine(/^PORT \d+/)),
    messages: () => readJsonl<FaultSinkMessage>(join(dir, "received.jsonl")),
    events: () => readJsonl<FaultSinkEvent>(join(dir, "events.jsonl")),
    closes: () => readJsonl<FaultSinkClose>(join(dir, "closes.jsonl")),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** A small seeded PRNG (mulberry32): the same seed gives the same plans. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Temporary faults: the message must be retried. */
export const TRANSIENT_FAULTS: readonly string[] = [
  "mail:421 4.3.2 Service shutting down",
  "mail:451 4.3.0 Mail server temporarily rejected message",
  "rcpt:451 4.2.0 Mailbox busy",
  "rcpt:452 4.2.2 Mailbox full",
  "rcpt:disconnect",
  "data:451 4.3.0 Not now",
  "data:disconnect",
  "dot:451 4.3.0 Queue write failed",
  "dot:452 4.3.1 Insufficient system storage",
  "dot:lost",
  "rcpt:stall",
  "dot:stall",
];

/** Permanent faults: the message must be bounced. */
export const PERMANENT_FAULTS: readonly string[] = [
  "rcpt:554 5.7.1 Relay access denied",
  "dot:554 5.6.0 Message content rejected",
  "mail:553 5.1.8 Sender address rejected",
];

/** What a plan means for its message. */
export interface PlannedMessage {
  key: string;
  plan: string[];
  /** The plan ends in a permanent fault: the sender gets a DSN. */
  bounced: boolean;
  /** The sink records the message at least once (success, or a "dot:lost"). */
  received: boolean;
}

/**
 * Seeded plans for `count` messages with keys `prefix0`, `prefix1`, …: each gets 0 to
 * `maxFaults` transient faults (stalls only with `stalls`), and with probability
 * `permanentRate` a permanent fault as its last transaction.
 */
export function faultPlans(
  seed: number,
  count: number,
  options: { prefix?: string; maxFaults?: number; permanentRate?: number; stalls?: boolean } = {},
): PlannedMessage[] {
  const rnd = seededRandom(seed);
  const transient = TRANSIENT_FAULTS.filter((f) => options.stalls !== false || !f.endsWith(":stall"));
  const maxFaults = options.maxFaults ?? 3;
  const out: PlannedMessage[] = [];
  for (let i = 0; i < count; i++) {
    const plan: string[] = [];
    const n = Math.floor(rnd() * (maxFaults + 1));
    for (let j = 0; j < n; j++) plan.push(transient[Math.floor(rnd() * transient.length)]!); // rnd() < 1
    const bounced = rnd() < (options.permanentRate ?? 0.2);
    if (bounced) plan.push(PERMANENT_FAULTS[Math.floor(rnd() * PERMANENT_FAULTS.length)]!);
    out.push({
      key: `${options.prefix ?? "m"}${i}`,
      plan,
      bounced,
      received: !bounced || plan.includes("dot:lost"),
    });
  }
  return out;
}
