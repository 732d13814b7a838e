/**
 * The fault scenario shared by tests/e2e/fault_sink_test.ts (small, in CI) and
 * bench/faults.ts (larger): messages with seeded fault plans (see
 * {@link faultPlans}) go through a real daemon to a fault-injecting sink, bounces
 * go to a second, well-behaved sink, and the result holds, per message, what the
 * sink saw, which DSNs arrived and the attempts of the audit log.
 */
import { join } from "node:path";
import { ctlJson } from "./ctl.ts";
import { startDaemon, type TestDaemon } from "./daemon.ts";
import {
  faultPlans,
  type FaultSink,
  type FaultSinkEvent,
  type FaultSinkMessage,
  type PlannedMessage,
  startFaultSink,
} from "./fault_sink.ts";
import { sendMessage } from "./smtp_client.ts";

/** One line of the audit log about a delivery. */
export interface AuditDelivery {
  id: string;
  recipient: string;
  outcome: "delivered" | "deferred" | "failed";
  reply: string;
  attempt: number;
  tls?: boolean;
}

/** Size and shape of a run. */
export interface FaultRunOptions {
  seed: number;
  count: number;
  maxFaults?: number;
  permanentRate?: number;
  stalls?: boolean;
  /** Faults for successive new connections (greeting stage), see fault_sink.py. */
  connections?: string[];
  /** Client timeouts of the daemon (connect, greeting, command, data). */
  timeout?: string;
  /** How long everything may take to settle. */
  deadlineMs: number;
  progress?: (line: string) => void;
}

/** What happened to one message. */
export interface MessageOutcome extends PlannedMessage {
  queueId: string;
  /** Transactions the fault sink saw for this message. */
  transactions: number;
  /** Copies of it the fault sink recorded. */
  copies: number;
  /** DSNs its sender got. */
  dsns: FaultSinkMessage[];
  /** Its delivery attempts, from the audit log. */
  audit: AuditDelivery[];
}

/** The whole run. */
export interface FaultRunResult {
  messages: MessageOutcome[];
  events: FaultSinkEvent[];
  /** Greeting faults the sink injected. */
  greetingFaults: number;
  /** `queue view --json` of a message that was deferred twice, taken while it waited. */
  probeView: { status: string; attempts: { result: { reply: string; outcome: string }[] }[] } | undefined;
  probe: MessageOutcome | undefined;
  settled: boolean;
  elapsedMs: number;
  queueTotal: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads `<data_dir>/audit.log`'s delivery lines. */
export async function auditDeliveries(d: TestDaemon): Promise<AuditDelivery[]> {
  const text = await Deno.readTextFile(join(d.dataDir, "audit.log")).catch(() => "");
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((e) =>
    e.type === "delivery"
  );
}

/** The TOML that routes f.test to the fault sink and src.test (senders, DSNs) to the DSN sink. */
export function faultDaemonToml(faultPort: number, dsnPort: number, timeout = "3s", extra = ""): string {
  return `[delivery]\nenabled = true\nmax_connections_per_domain = 10\n${extra}\n` +
    `[delivery.retry]\nbase_delay = "1s"\nmax_delay = "1s"\nfactor = 1\njitter = 0\n` +
    `[delivery.timeouts]\nconnect = "${timeout}"\ngreeting = "${timeout}"\ncommand = "${timeout}"\n` +
    `data_block = "${timeout}"\ndata_end = "${timeout}"\n` +
    `[delivery.circuit_breaker]\nfailures = 10000\ncooldown = "1s"\n` +
    // Idle connections are closed by the pool before the client's idle timeout could hit them.
    `[delivery.pool]\nidle_timeout = "1s"\n` +
    `[delivery.domains."f.test"]\nmx_override = "127.0.0.1:${faultPort}"\n` +
    `[delivery.domains."src.test"]\nmx_override = "127.0.0.1:${dsnPort}"\n`;
}

/** Sends every planned message and waits until each has its expected ending (or the deadline). */
export async function runFaultScenario(options: FaultRunOptions): Promise<FaultRunResult> {
  const say = options.progress ?? (() => {});
  const planned = faultPlans(options.seed, options.count, {
    maxFaults: options.maxFaults,
    permanentRate: options.permanentRate,
    stalls: options.stalls,
  });
  // The probe waits through five deferrals, long enough to be looked at with empathctl.
  const probePlan: PlannedMessage = {
    key: "probe",
    plan: Array(5).fill("mail:451 4.3.0 Probe deferral"),
    bounced: false,
    received: true,
  };
  const all = [...planned, probePlan];
  let sink: FaultSink | undefined;
  let dsnSink: FaultSink | undefined;
  let d: TestDaemon | undefined;
  try {
    sink = await startFaultSink({
      plans: Object.fromEntries(all.map((m) => [m.key, m.plan])),
      connections: options.connections ?? [],
      stall_seconds: 60,
    });
    dsnSink = await startFaultSink({ keep_data: true });
    d = await startDaemon({ logLevel: "info", toml: faultDaemonToml(sink.port, dsnSink.port, options.timeout) });
    const t0 = Date.now();
    const queueIds = new Map<string, string>();
    for (const m of all) {
      const r = await sendMessage(
        d.port,
        `${m.key}@src.test`,
        [`${m.key}@f.test`],
        `X-Test-Id: ${m.key}\r\nSubject: fault plan ${m.plan.join(", ") || "none"}\r\n\r\nbody\r\n`,
      );
      const id = /queued as (\S+)/.exec(r.text)?.[1];
      if (r.code !== 250 || !id) throw new Error(`message ${m.key} not accepted: ${r.text}`);
      queueIds.set(m.key, id);
    }
    say(`${all.length} messages queued in ${Date.now() - t0} ms`);

    let probeView: FaultRunResult["probeView"];
    const probeId = queueIds.get("probe")!;
    const settledFor = async () => {
      const got = await sink!.messages();
      const dsns = await dsnSink!.messages();
      return all.every((m) =>
        (!m.received || got.some((g) => g.test_id === m.key)) &&
        (!m.bounced || dsns.some((g) => g.rcpt_tos.includes(`${m.key}@src.test`)))
      );
    };
    let settled = false;
    let queueTotal = -1;
    while (Date.now() - t0 < options.deadlineMs) {
      if (!probeView) {
        const view = await ctlJson<NonNullable<FaultRunResult["probeView"]>>(d, ["queue", "view", probeId]).catch(
          () => undefined,
        );
        if (view && view.attempts.length >= 2) probeView = view;
      }
      if (probeView && await settledFor()) {
        queueTotal = (await ctlJson<{ total: number }>(d, ["queue", "stats"])).total;
        if (queueTotal === 0) {
          settled = true;
          break;
        }
      }
      await sleep(probeView ? 250 : 50);
    }
    const elapsedMs = Date.now() - t0;
    say(`settled ${settled} after ${elapsedMs} ms`);
    // The audit log is written in the background: give it a moment to catch up.
    const stopAt = Date.now();
    await d.stop();
    say(`daemon stopped in ${Date.now() - stopAt} ms`);
    const audit = await auditDeliveries(d);
    const got = await sink.messages();
    const dsns = await dsnSink.messages();
    const events = await sink.events();
    const messages = all.map((m): MessageOutcome => {
      const queueId = queueIds.get(m.key)!;
      return {
        ...m,
        queueId,
        transactions: events.filter((e) => e.stage === "transaction" && e.key === m.key).length,
        copies: got.filter((g) => g.test_id === m.key).length,
        dsns: dsns.filter((g) => g.rcpt_tos.includes(`${m.key}@src.test`)),
        audit: audit.filter((a) => a.id === queueId),
      };
    });
    return {
      messages: messages.filter((m) => m.key !== "probe"),
      probe: messages.find((m) => m.key === "probe"),
      probeView,
      events,
      greetingFaults: events.filter((e) => e.stage === "greet").length,
      settled,
      elapsedMs,
      queueTotal,
    };
  } finally {
    if (d) {
      await d.kill();
      await d.cleanup();
    }
    await sink?.stop();
    await dsnSink?.stop();
  }
}

/** Counts for the report: how the messages ended and which faults they met. */
export function summarizeFaultRun(r: FaultRunResult): Record<string, number> {
  const out: Record<string, number> = {
    messages: r.messages.length,
    delivered: r.messages.filter((m) => m.copies > 0 && !m.bounced).length,
    bounced: r.messages.filter((m) => m.dsns.length > 0).length,
    duplicates: r.messages.reduce((n, m) => n + Math.max(0, m.copies - 1), 0),
    attempts: r.messages.reduce((n, m) => n + m.audit.length, 0),
    greeting_faults: r.greetingFaults,
  };
  for (const e of r.events) {
    if (e.stage === "transaction" || e.key === "probe") continue;
    const kind = `fault ${e.stage}:${e.action.replace(/^(\d{3}) .*/, "$1")}`;
    out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}
