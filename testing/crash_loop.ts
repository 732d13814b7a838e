/**
 * The crash loop shared by tests/e2e/crash_loop_test.ts (small, in CI) and
 * bench/crash_loop.ts (larger): parallel SMTP senders keep the daemon busy while it
 * is SIGKILLed at random (seeded) moments and restarted, with delivery on to a real
 * sink that records each message's client-generated X-Test-Id. Then the load stops,
 * the queue drains, and the result says what the clients were told and what the
 * sink got.
 */
import { join } from "node:path";
import { ctlJson } from "./ctl.ts";
import { restartDaemon, startDaemon, type TestDaemon } from "./daemon.ts";
import { type FaultSink, seededRandom, startFaultSink } from "./fault_sink.ts";
import { SmtpClient } from "./smtp_client.ts";
import { spooledIds } from "./spool_reader.ts";

/** How big a run is. */
export interface CrashLoopOptions {
  kills: number;
  senders: number;
  seed: number;
  /** Messages accepted by each incarnation before its kill becomes possible. */
  minAcceptsBeforeKill: number;
  /** Then the kill comes after a random pause of up to this long. */
  maxKillDelayMs: number;
  /** Load time after the last restart, before the senders stop. */
  tailMs: number;
  /** How long the queue may take to drain after the load stops. */
  drainTimeoutMs: number;
  /** Bytes of body per message (lines of 64 characters). */
  bodyBytes: number;
  /** Queue backend. */
  backend?: "kv" | "file";
  /** Progress lines (bench); silent when absent. */
  progress?: (line: string) => void;
}

/** What happened. */
export interface CrashLoopResult {
  seed: number;
  kills: number;
  /** DATA transactions the clients completed (sent the final dot). */
  sent: number;
  /** test id → queue id, for every message that got 250. */
  accepted: Map<string, string>;
  /** Messages whose final dot got no reply (the daemon died): may or may not have been queued. */
  inDoubt: number;
  /** 4xx/5xx replies to the final dot. */
  refused: number;
  /** test id → how often the sink got it. */
  delivered: Map<string, number>;
  /** Accepted ids the sink never got (must be empty). */
  lost: string[];
  /** Extra copies the sink got (sum over ids of count - 1). */
  duplicates: number;
  /**
   * Of those, copies whose first one reached the sink after a SIGKILL and before the restart:
   * our final dot was out, the reply could not be read (RFC 5321 6.1 allows this duplicate).
   */
  duplicatesAfterDot: number;
  /**
   * Duplicates whose first copy was the last transaction of a connection that ended in a reset:
   * the daemon died with the sink's 250 unread in its socket (its kernel answered with RST), so
   * the reply was provably never read (RFC 5321 6.1). Overlaps {@link duplicatesAfterDot}.
   */
  duplicatesReplyUnread: number;
  /** Duplicates neither after our final dot nor with the reply provably unread. */
  duplicatesOthers: number;
  /** For the other duplicates: ms from the sink taking the first copy to the next kill. */
  duplicateGapsMs: number[];
  /** Ids delivered that never got a 250 (queued as the daemon died, before the reply). */
  deliveredUnacknowledged: number;
  /** Milliseconds from the end of the load to an empty queue. */
  drainMs: number;
  loadMs: number;
  /** Restart times (SIGKILL to "started"), ms. */
  restartMs: number[];
  /** What the daemon said at each start about recovery (the JSON log properties). */
  recoveries: Record<string, number>[];
  /** After draining: queue stats total, queue list length, spool ids, spool/data entries. */
  finalQueueTotal: number;
  finalQueueList: number;
  finalSpool: string[];
  finalDataFiles: string[];
  /** Exit code of the final SIGTERM. */
  exitCode: number;
}

interface LoadState {
  port: number;
  stop: boolean;
  sent: number;
  inDoubt: number;
  refused: number;
  accepted: Map<string, string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sender(n: number, state: LoadState, body: string): Promise<void> {
  let seq = 0;
  while (!state.stop) {
    let c: SmtpClient | undefined;
    let dotSent = false;
    try {
      c = await SmtpClient.connect(state.port);
      if ((await c.reply()).code !== 220) throw new Error("no greeting");
      await c.cmd("EHLO load.test");
      while (!state.stop) {
        const id = `s${n}-${seq++}`;
        if ((await c.cmd(`MAIL FROM:<load${n}@src.test>`)).code !== 250) break;
        if ((await c.cmd(`RCPT TO:<rcpt${n}@sink.test>`)).code !== 250) break;
        if ((await c.cmd("DATA")).code !== 354) break;
        await c.send(`X-Test-Id: ${id}\r\nSubject: crash loop ${id}\r\n\r\n${body}.\r\n`);
        dotSent = true;
        state.sent++;
        const r = await c.reply();
        dotSent = false;
        const queueId = /queued as (\S+)/.exec(r.text)?.[1];
        if (r.code === 250 && queueId) state.accepted.set(id, queueId);
        else state.refused++;
      }
    } catch {
      // The daemon died under us (or is not up yet): what got no 250 is not ours to count.
      if (dotSent) state.inDoubt++;
      await sleep(25);
    } finally {
      c?.close();
    }
  }
}

/** Runs the crash loop and returns what happened; the caller asserts or prints. */
export async function runCrashLoop(options: CrashLoopOptions): Promise<CrashLoopResult> {
  const rnd = seededRandom(options.seed);
  const say = options.progress ?? (() => {});
  const sink: FaultSink = await startFaultSink();
  const line = "0123456789abcdef".repeat(4) + "\r\n";
  const body = line.repeat(Math.max(1, Math.round(options.bodyBytes / line.length)));
  let d: TestDaemon | undefined;
  const restartMs: number[] = [];
  const kills: { at: number; restarted: number }[] = [];
  const recoveries: Record<string, number>[] = [];
  const noteRecovery = async (daemon: TestDaemon) => {
    const rec = JSON.parse(await daemon.waitForLog(/queue recovered/));
    recoveries.push(rec.properties);
  };
  try {
    d = await startDaemon({
      logLevel: "info",
      toml: `[queue]\nbackend = "${options.backend ?? "kv"}"\n` +
        `[delivery]\nenabled = true\n` +
        `[delivery.retry]\nbase_delay = "1s"\nmax_delay = "2s"\njitter = 0\n` +
        `[delivery.domains."sink.test"]\nmx_override = "127.0.0.1:${sink.port}"\n` +
        `[delivery.domains."src.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
    });
    await noteRecovery(d);
    const state: LoadState = { port: d.port, stop: false, sent: 0, inDoubt: 0, refused: 0, accepted: new Map() };
    const t0 = Date.now();
    const senders = Array.from({ length: options.senders }, (_, i) => sender(i, state, body));
    for (let k = 0; k < options.kills; k++) {
      const base = state.accepted.size;
      const wait = Date.now() + 20_000;
      while (state.accepted.size < base + options.minAcceptsBeforeKill) {
        if (Date.now() > wait) throw new Error(`incarnation ${k + 1} accepted nothing for 20 s`);
        await sleep(10);
      }
      await sleep(Math.floor(rnd() * options.maxKillDelayMs));
      const killedAt = Date.now();
      await d.kill();
      say(`kill ${k + 1}/${options.kills}: ${state.accepted.size} accepted so far`);
      d = await restartDaemon(d);
      restartMs.push(Date.now() - killedAt);
      kills.push({ at: killedAt, restarted: Date.now() });
      state.port = d.port;
      await noteRecovery(d);
    }
    await sleep(options.tailMs);
    state.stop = true;
    await Promise.all(senders);
    const loadMs = Date.now() - t0;
    const loadEnd = Date.now();
    say(`load stopped: ${state.accepted.size} accepted, waiting for the queue to drain`);

    const wanted = new Set(state.accepted.keys());
    const delivered = new Map<string, number>();
    const firstAt = new Map<string, number>();
    const firstConn = new Map<string, number>();
    const lastOnConn = new Map<number, string>();
    let finalQueueTotal = -1;
    let finalSpool: string[] = [];
    const deadline = loadEnd + options.drainTimeoutMs;
    while (true) {
      delivered.clear();
      for (const m of await sink.messages()) {
        if (m.test_id) delivered.set(m.test_id, (delivered.get(m.test_id) ?? 0) + 1);
        if (m.test_id && !(m.at * 1000 >= (firstAt.get(m.test_id) ?? Infinity))) {
          firstAt.set(m.test_id, m.at * 1000);
          firstConn.set(m.test_id, m.conn);
        }
        if (m.test_id) lastOnConn.set(m.conn, m.test_id);
      }
      const missing = [...wanted].filter((id) => !delivered.has(id)).length;
      if (missing === 0) {
        finalQueueTotal = (await ctlJson<{ total: number }>(d, ["queue", "stats"])).total;
        finalSpool = await spooledIds(d.dataDir);
        if (finalQueueTotal === 0 && finalSpool.length === 0) break;
      }
      if (Date.now() > deadline) break;
      await sleep(200);
    }
    const drainMs = Date.now() - loadEnd;
    const finalQueueList = (await ctlJson<{ messages: unknown[] }>(d, ["queue", "list"])).messages.length;
    finalQueueTotal = (await ctlJson<{ total: number }>(d, ["queue", "stats"])).total;
    finalSpool = await spooledIds(d.dataDir);
    const finalDataFiles = (await Array.fromAsync(Deno.readDir(join(d.dataDir, "spool", "data")))).map((e) => e.name);
    const exitCode = await d.stop();
    const lost = [...wanted].filter((id) => !delivered.has(id));
    let duplicates = 0;
    let duplicatesAfterDot = 0;
    let duplicatesReplyUnread = 0;
    let duplicatesOthers = 0;
    const duplicateGapsMs: number[] = [];
    const reset = new Set((await sink.closes()).filter((c) => c.how === "reset").map((c) => c.conn));
    let deliveredUnacknowledged = 0;
    for (const [id, n] of delivered) {
      duplicates += n - 1;
      if (n > 1) {
        const at = firstAt.get(id) ?? 0;
        const conn = firstConn.get(id) ?? -1;
        const unread = reset.has(conn) && lastOnConn.get(conn) === id;
        if (unread) duplicatesReplyUnread += n - 1;
        if (kills.some((k) => at >= k.at && at < k.restarted)) duplicatesAfterDot += n - 1;
        else if (!unread) {
          duplicatesOthers += n - 1;
          duplicateGapsMs.push(Math.round(Math.min(...kills.map((k) => k.at - at).filter((g) => g >= 0))));
        }
      }
      if (!wanted.has(id)) deliveredUnacknowledged++;
    }
    return {
      seed: options.seed,
      kills: options.kills,
      sent: state.sent,
      accepted: state.accepted,
      inDoubt: state.inDoubt,
      refused: state.refused,
      delivered,
      lost,
      duplicates,
      duplicatesAfterDot,
      duplicatesReplyUnread,
      duplicatesOthers,
      duplicateGapsMs,
      deliveredUnacknowledged,
      drainMs,
      loadMs,
      restartMs,
      recoveries,
      finalQueueTotal,
      finalQueueList,
      finalSpool,
      finalDataFiles,
      exitCode,
    };
  } finally {
    if (d) {
      await d.kill();
      await d.cleanup();
    }
    await sink.stop();
  }
}

/** One line per figure, for test output and the bench. */
export function describeCrashLoop(r: CrashLoopResult): string {
  const median = [...r.restartMs].sort((a, b) => a - b)[Math.floor(r.restartMs.length / 2)] ?? 0;
  const requeued = r.recoveries.reduce((n, x) => n + (x.requeued ?? 0), 0);
  const orphans = r.recoveries.reduce((n, x) => n + (x.orphans ?? 0), 0);
  return [
    `seed ${r.seed}, kills ${r.kills}, load ${(r.loadMs / 1000).toFixed(1)} s`,
    `sent ${r.sent}, accepted (250) ${r.accepted.size}, refused ${r.refused}, in doubt (no reply) ${r.inDoubt}`,
    `delivered ${[...r.accepted.keys()].filter((id) => r.delivered.has(id)).length} of the accepted, ` +
    `lost ${r.lost.length}, duplicates ${r.duplicates} (RFC 5321 6.1: ${r.duplicatesAfterDot} reached the sink after ` +
    `the kill, ${r.duplicatesReplyUnread} with the 250 unread in the dead daemon's socket (connection reset); ` +
    `${r.duplicatesOthers} others, ${
      (r.duplicatesOthers * 1000 / Math.max(1, r.accepted.size)).toFixed(2)
    } per 1,000, ` +
    `first copy ${JSON.stringify(r.duplicateGapsMs.slice(0, 20))} ms before a kill), ` +
    `delivered without a 250 ${r.deliveredUnacknowledged}`,
    `drain after the load ${(r.drainMs / 1000).toFixed(1)} s; restart (SIGKILL to listening) median ${median} ms`,
    `recovery: ${orphans} orphans removed, ${requeued} requeued over ${r.recoveries.length} starts`,
    `final: queue ${r.finalQueueTotal} (list ${r.finalQueueList}), spool ${r.finalSpool.length}, ` +
    `spool/data ${r.finalDataFiles.length}, exit ${r.exitCode}`,
  ].join("\n");
}
