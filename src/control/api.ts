/**
 * The control API: one declaration of every command the daemon answers — its
 * name ("group.command"), its argument schema, whether it changes state, and
 * the type of its result. The daemon's handlers, the socket client and any
 * other front end (CLI, dashboard, cluster peers) are typed from it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ArgsOf, parseArgs } from "./api.ts"; // @ts-ignore deno#26900
 *
 * const args: ArgsOf<"queue.list"> = parseArgs("queue.list", { status: "deferred" });
 * assert.equal(args.limit, 100); // the default
 * assert.throws(() => parseArgs("queue.list", { limit: -1 })); // ControlError BAD_ARGS naming the argument
 * ```
 * @module
 */
import type { z } from "zod";
import type { CacheEntry } from "../delivery/mod.ts";
import { ARGS } from "./api_args.ts";
import type {
  BulkResult,
  CatResult,
  ClusterNodeRow,
  DestinationRow,
  DnsLookupResult,
  FreezeResult,
  HistoryResult,
  LogLevelResult,
  Override,
  PingResult,
  QueueListResult,
  QueueStatsResult,
  QueueViewResult,
  ReloadReport,
  SessionRow,
  StatusResult,
  Suspension,
  TlsReportResult,
  TraceEvent,
  UnfreezeResult,
} from "./api_results.ts";
import { ControlError } from "./protocol.ts";
import { DKIM_CHECK_ARGS, type DkimCheckResult } from "./api_dkim.ts";

/** One command: its argument schema, whether it changes state, and (as a type only) its result. */
export interface CommandDecl<A extends z.ZodType = z.ZodType, R = unknown> {
  readonly args: A;
  /** True for commands that change state: the daemon writes them to the audit log. */
  readonly mutates: boolean;
  /** Never set at run time: carries the result type for {@link ResultOf}. */
  readonly result?: R;
  /** A streaming command: the daemon answers with one frame per event until the client hangs up. */
  readonly streams?: boolean;
}

/** Declares a command answering `R`: `command<R>()({ args, mutates })`. */
const command =
  <R>() => <A extends z.ZodType>(decl: { args: A; mutates: boolean; streams?: boolean }): CommandDecl<A, R> => decl;

/** Every command of the control API. */
export const CONTROL_API = {
  "system.ping": command<PingResult>()({ args: ARGS.none, mutates: false }),
  "system.status": command<StatusResult>()({ args: ARGS.none, mutates: false }),
  "system.reload-config": command<ReloadReport>()({ args: ARGS.none, mutates: true }),
  "system.log-level": command<LogLevelResult>()({ args: ARGS.logLevel, mutates: true }),
  "cluster.nodes": command<{ node: string | null; nodes: ClusterNodeRow[] }>()({ args: ARGS.none, mutates: false }),

  "queue.list": command<QueueListResult>()({ args: ARGS.list, mutates: false }),
  "queue.view": command<QueueViewResult>()({ args: ARGS.id, mutates: false }),
  "queue.cat": command<CatResult>()({ args: ARGS.cat, mutates: false }),
  "queue.retry": command<{ retried: number } | BulkResult>()({ args: ARGS.retry, mutates: true }),
  "queue.delete": command<{ deleted: string } | BulkResult>()({ args: ARGS.delete, mutates: true }),
  "queue.bounce": command<{ bounced: number } | BulkResult>()({ args: ARGS.bounce, mutates: true }),
  "queue.hold": command<BulkResult>()({ args: ARGS.hold, mutates: true }),
  "queue.release": command<BulkResult>()({ args: ARGS.release, mutates: true }),
  "queue.freeze": command<FreezeResult>()({ args: ARGS.freeze, mutates: true }),
  "queue.unfreeze": command<UnfreezeResult>()({ args: ARGS.unfreeze, mutates: true }),
  "queue.suspend": command<Suspension>()({ args: ARGS.suspend, mutates: true }),
  "queue.resume": command<{ domain: string; resumed: true }>()({ args: ARGS.domain, mutates: true }),
  "queue.suspended": command<{ suspensions: Suspension[] }>()({ args: ARGS.none, mutates: false }),
  "queue.summary": command<{ destinations: DestinationRow[] }>()({ args: ARGS.none, mutates: false }),
  "queue.process-now": command<{ scheduled: number }>()({ args: ARGS.none, mutates: true }),
  "queue.stats": command<QueueStatsResult>()({ args: ARGS.none, mutates: false }),
  "queue.set-priority": command<{ changed: number }>()({ args: ARGS.setPriority, mutates: true }),

  "dns.list-cache": command<{ entries: CacheEntry[] }>()({ args: ARGS.none, mutates: false }),
  "dns.clear-cache": command<{ cleared: number }>()({ args: ARGS.none, mutates: true }),
  "dns.refresh": command<{ domain: string; entries: CacheEntry[] }>()({ args: ARGS.domain, mutates: true }),
  "dns.list-overrides": command<{ overrides: Override[] }>()({ args: ARGS.none, mutates: false }),
  "dns.set-override": command<Override>()({ args: ARGS.setOverride, mutates: true }),
  "dns.remove-override": command<{ domain: string; removed: true }>()({ args: ARGS.domain, mutates: true }),
  "dns.lookup": command<DnsLookupResult>()({ args: ARGS.dnsLookup, mutates: false }),
  "tls.report": command<TlsReportResult>()({ args: ARGS.tlsReport, mutates: false }),

  "smtp.connections": command<{ sessions: SessionRow[] }>()({ args: ARGS.none, mutates: false }),
  "smtp.kill": command<{ id: string; killed: true }>()({ args: ARGS.sessionId, mutates: true }),
  "message.history": command<HistoryResult>()({ args: ARGS.id, mutates: false }),
  /** Streams: one {@link TraceEvent} per frame until the client closes the connection. */
  "trace.smtp": command<TraceEvent>()({ args: ARGS.trace, mutates: false, streams: true }),
  /** `rate` null in the result: the runtime limit was removed. */
  "delivery.rate-limit": command<{ domain: string; rate: number | null }>()({ args: ARGS.rateLimit, mutates: true }),

  "dkim.check": command<DkimCheckResult>()({ args: DKIM_CHECK_ARGS, mutates: false }),
} as const satisfies Record<string, CommandDecl>;

/** The commands that stream events instead of answering once. */
export type StreamingCommand = "trace.smtp";

/** True when `name` streams (see {@link StreamingCommand}). */
export const isStreaming = (name: CommandName): name is StreamingCommand => CONTROL_API[name].streams === true;

/** The declaration's type. */
export type ControlApi = typeof CONTROL_API;
/** The name of a declared command, e.g. "queue.list". */
export type CommandName = keyof ControlApi;
/** A command's arguments after parsing (defaults applied, values normalized): what handlers get. */
export type ArgsOf<N extends CommandName> = z.output<ControlApi[N]["args"]>;
/** A command's arguments as a client sends them. */
export type ArgsInput<N extends CommandName> = z.input<ControlApi[N]["args"]>;
/** What a command answers. */
export type ResultOf<N extends CommandName> = ControlApi[N] extends CommandDecl<z.ZodType, infer R> ? R : never;

/** Every declared command name. */
export const COMMAND_NAMES = Object.keys(CONTROL_API) as CommandName[];

/** True when `name` is a declared command (own keys only: "__proto__" is not one). */
export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(CONTROL_API, name);
}

/** A failed parse in words: `argument "x" = <value>: expected ...`, `missing argument "x"`, or a rule's message. */
export function formatArgIssues(issues: readonly z.core.$ZodIssue[]): string {
  const messages = issues.map((issue) => {
    const name = issue.path.map(String).join(".");
    if (!name) return issue.message;
    if (issue.input === undefined) return `missing argument "${name}"`;
    const shown = JSON.stringify(issue.input) ?? String(issue.input);
    return `argument "${name}" = ${shown.length > 80 ? `${shown.slice(0, 79)}…` : shown}: ${issue.message}`;
  });
  return [...new Set(messages)].join("; ");
}

/** Checks and normalizes a command's arguments; throws ControlError BAD_ARGS naming what is wrong. */
export function parseArgs<N extends CommandName>(name: N, raw: unknown): ArgsOf<N> {
  const schema: z.ZodType = CONTROL_API[name].args;
  const parsed = schema.safeParse(raw ?? {}, { reportInput: true });
  if (!parsed.success) throw new ControlError(formatArgIssues(parsed.error.issues), "BAD_ARGS");
  return parsed.data as ArgsOf<N>;
}
