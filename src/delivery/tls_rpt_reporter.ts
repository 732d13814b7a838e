/**
 * The daily TLS-RPT reporter (RFC 8460): keeps the counters in a file under the data
 * directory (so a restart loses no day), and once a day, at a random time within
 * `sendWindowMs` after 00:00 UTC, sends every finished day's report to each domain's
 * `rua`: `mailto:` through Empath's own queue (`submit`), `https:` by POST
 * (`application/tlsrpt+gzip`). Domains without a `_smtp._tls` record get nothing.
 * A finished day is dropped after its pass; a POST that fails is logged, not retried
 * (mailed reports are retried by the queue).
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Resolver } from "./resolver.ts";
import type { TlsRptCounters, TlsRptSummary } from "./tls_rpt.ts";
import { buildTlsRpt, gzipReport, parseTlsRptRecord, reportMessage } from "./tls_rpt_report.ts";

/** Queues one message (the daemon passes the submitter). */
export type SubmitReport = (message: { data: Uint8Array; sender: string; recipient: string }) => Promise<string>;

/** Reporter settings. */
export interface TlsRptReporterOptions {
  counters: TlsRptCounters;
  resolver: Resolver;
  /** Counters file (JSON); none: in memory only. */
  file?: string;
  submit?: SubmitReport;
  /** The reporting host name. */
  hostname: string;
  organization?: string;
  /** contact-info and From: (default postmaster@hostname). */
  contact?: string;
  sendWindowMs: number;
  /** Extra CA certificates (PEM) for HTTPS endpoints. */
  ca?: string;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

/** The running reporter. */
export interface TlsRptReporter {
  /** Sends the reports of every finished day now; resolves with how many went out. */
  sendFinished(): Promise<number>;
  /** When the next pass is due (epoch ms). */
  readonly nextAt: number;
  /** Writes the counters file now. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

const DAY = 86_400_000;

/** Reads the counters file (missing: none). */
async function readRows(file: string): Promise<TlsRptSummary[]> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(file));
    return Array.isArray(parsed?.rows) ? parsed.rows as TlsRptSummary[] : [];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

/** The TXT `rua` of a domain; [] without a TLSRPTv1 record. */
async function ruaOf(domain: string, resolver: Resolver): Promise<string[]> {
  if (!resolver.lookup) return [];
  try {
    const answer = await resolver.lookup(`_smtp._tls.${domain}`, "TXT");
    const texts = answer.records.map((r) => (r.data as Uint8Array[]).map((b) => new TextDecoder().decode(b)).join(""));
    return texts.map(parseTlsRptRecord).find((r) => r !== undefined) ?? [];
  } catch {
    return [];
  }
}

/** Loads the counters file, then schedules the daily pass. */
export async function startTlsRptReporter(options: TlsRptReporterOptions): Promise<TlsRptReporter> {
  const { counters, log } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  if (options.file) counters.restore(await readRows(options.file));
  const contact = options.contact ?? `postmaster@${options.hostname}`;
  const client = options.ca ? Deno.createHttpClient({ caCerts: [options.ca] }) : undefined;
  let closed = false;
  let saving: Promise<void> = Promise.resolve();
  let saveTimer: ReturnType<typeof setTimeout> | undefined;
  const write = () => {
    if (!options.file) return Promise.resolve();
    const file = options.file;
    saving = saving.then(async () => {
      await Deno.writeTextFile(`${file}.tmp`, JSON.stringify({ rows: counters.all() }));
      await Deno.rename(`${file}.tmp`, file);
    }).catch((err) => log.warning("TLS-RPT counters not saved: {error}", { error: (err as Error).message }));
    return saving;
  };
  counters.onChange = () => {
    if (saveTimer !== undefined || closed) return;
    saveTimer = setTimeout(() => {
      saveTimer = undefined;
      write();
    }, 1000);
  };

  async function send(uri: string, day: string, domain: string, rows: TlsRptSummary[]): Promise<void> {
    const reportId = `${day}.${domain}.${crypto.randomUUID()}`;
    const report = buildTlsRpt({
      day,
      domain,
      rows,
      organization: options.organization ?? options.hostname,
      contact,
      reportId,
    });
    if (uri.toLowerCase().startsWith("mailto:")) {
      if (!options.submit) return;
      const to = decodeURIComponent(uri.slice(7));
      const data = reportMessage({ report, domain, submitter: options.hostname, from: contact, to, now: now() });
      const id = await options.submit({ data, sender: contact, recipient: to });
      log.info("TLS-RPT report {reportId} for {domain} queued to {to} as {id}", { reportId, domain, to, id });
      return;
    }
    const res = await fetch(uri, {
      method: "POST",
      headers: { "content-type": "application/tlsrpt+gzip" },
      body: gzipReport(report) as Uint8Array<ArrayBuffer>,
      redirect: "manual",
      client,
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`${uri} answered HTTP ${res.status}`);
    log.info("TLS-RPT report {reportId} for {domain} posted to {uri}", { reportId, domain, uri });
  }

  async function sendFinished(): Promise<number> {
    const today = counters.today();
    const groups = new Map<string, TlsRptSummary[]>();
    for (const r of counters.all().filter((r) => r.day < today)) {
      const key = `${r.day} ${r.domain}`;
      groups.set(key, [...groups.get(key) ?? [], r]);
    }
    let sent = 0;
    for (const [key, rows] of groups) {
      const [day, domain] = key.split(" ") as [string, string];
      for (const uri of await ruaOf(domain, options.resolver)) {
        try {
          await send(uri, day, domain, rows);
          sent++;
        } catch (err) {
          log.warning("TLS-RPT report for {domain} ({day}) to {uri} failed: {error}", {
            domain,
            day,
            uri,
            error: (err as Error).message,
          });
        }
      }
    }
    counters.dropBefore(today);
    await write();
    return sent;
  }

  // Today's slot is 00:00 UTC + random × window; once it has passed, tomorrow's (or soon, for leftovers).
  const slot = (dayStart: number) => dayStart + Math.floor(random() * options.sendWindowMs);
  const startOfToday = () => Math.floor(now() / DAY) * DAY;
  let nextAt = slot(startOfToday());
  if (nextAt <= now()) {
    const leftovers = counters.all().some((r) => r.day < counters.today());
    nextAt = leftovers
      ? now() + Math.floor(random() * Math.min(options.sendWindowMs, 60_000))
      : slot(startOfToday() + DAY);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = () => {
    if (closed) return;
    const t = setTimeout(async () => {
      await sendFinished().catch((err) => log.error("TLS-RPT pass failed: {error}", { error: (err as Error).message }));
      nextAt = slot(startOfToday() + DAY);
      schedule();
    }, Math.max(0, nextAt - now()));
    Deno.unrefTimer(t as unknown as number);
    timer = t;
  };
  schedule();
  return {
    sendFinished,
    get nextAt() {
      return nextAt;
    },
    flush: write,
    async close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(saveTimer);
      await write();
      client?.close();
    },
  };
}
