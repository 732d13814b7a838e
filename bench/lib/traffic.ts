/**
 * "Normal traffic" for the connection benchmark: a few sessions sending small messages
 * flat out or at an offered rate, timing each new connection's greeting and each
 * transaction (MAIL FROM … final 250 after DATA).
 * @module
 */
import type { SmtpClient } from "../../testing/smtp_client.ts";
import { openSession, transaction } from "./client.ts";
import { messageText, percentile } from "./common.ts";

/** What one traffic run measured. */
export interface TrafficResult {
  sent: number;
  errors: number;
  firstError?: string;
  seconds: number;
  rate: number;
  /** Accept latency, ms. */
  p50: number;
  p99: number;
  max: number;
  /** Connect → 220 greeting of each session, ms (max). */
  greetMaxMs: number;
}

/** Options for {@link traffic}. */
export interface TrafficOptions {
  port: number;
  sessions: number;
  seconds: number;
  /** Offered messages/second over all sessions; absent = flat out. */
  rate?: number;
  size?: number;
}

/** Runs sessions for `seconds`, each reconnecting after an error. */
export async function traffic(o: TrafficOptions): Promise<TrafficResult> {
  const data = new TextEncoder().encode(messageText(o.size ?? 1000, "normal traffic"));
  const latencies: number[] = [];
  const greets: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const interval = o.rate ? (1000 * o.sessions) / o.rate : 0;
  const t0 = performance.now();
  const end = t0 + o.seconds * 1000;
  await Promise.all(Array.from({ length: o.sessions }, async (_, s) => {
    let c: SmtpClient | undefined;
    let due = t0 + (interval * s) / o.sessions;
    while (performance.now() < end) {
      if (interval > 0) {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        due += interval;
        if (performance.now() >= end) break;
      }
      try {
        if (!c || c.closed) {
          const g0 = performance.now();
          c = await openSession(o.port, "normal.bench.test");
          greets.push(performance.now() - g0);
        }
        const { reply, ms } = await transaction(c, data);
        if (reply.code !== 250) throw new Error(`${reply.code} ${reply.text || "connection closed"}`);
        latencies.push(ms);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
        c?.close();
        c = undefined;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    if (c && !c.closed) {
      await c.tryCmd("QUIT");
      c.close();
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    sent: latencies.length,
    errors,
    firstError,
    seconds,
    rate: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? NaN,
    greetMaxMs: greets.length ? Math.max(...greets) : NaN,
  };
}

/** One line for a {@link TrafficResult}. */
export function trafficLine(r: TrafficResult): string {
  return `${r.rate.toFixed(0)} msg/s (${r.sent} sent, ${r.errors} errors${
    r.firstError ? `: ${r.firstError.slice(0, 80)}` : ""
  }), accept latency p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${
    r.max.toFixed(1)
  } ms; greeting of new sessions ≤ ${r.greetMaxMs.toFixed(0)} ms`;
}
