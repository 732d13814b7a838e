/**
 * What the control handlers reach into (the running daemon's parts), and the
 * handler types. State changes go through the delivery engine, the resolver and
 * the limits, never around them.
 * @module
 */
import type { Config } from "../config/mod.ts";
import type { DeliveryEngine, Resolver, TlsRptCounters } from "../delivery/mod.ts";
import type { SmtpTrace } from "../observability/mod.ts";
import type { QueueStore } from "../queue/mod.ts";
import type { SessionInfo } from "../smtp/mod.ts";
import type { Spool } from "../spool/mod.ts";
import type { ArgsOf, CommandName, ResultOf, StreamingCommand } from "./api.ts";
import type { ClusterNodeRow, ListenerAddress, ReloadReport, Totals } from "./api_results.ts";

/** Everything the handlers reach into. */
export interface ControlContext {
  version: string;
  startedAt: number;
  configPath: string;
  config(): Config;
  addresses: ListenerAddress[];
  store: QueueStore;
  spool: Spool;
  delivery: DeliveryEngine;
  resolver: Resolver;
  sessions(): SessionInfo[];
  reload(): Promise<ReloadReport>;
  lastReload(): ReloadReport | undefined;
  logLevel(): string;
  setLogLevel(level: string): Promise<void>;
  totals(): Totals;
  /** The audit log file, when it goes to a file (`message.history` reads it and its rotations). */
  auditFile?: string;
  /** Ends an SMTP session of any listener; false when none has it. */
  killSession?(id: string): boolean;
  /** Live SMTP conversations (`trace.smtp`). */
  trace?: SmtpTrace;
  /** Set on a postgres-backed node: its id and the cluster's nodes. */
  cluster?: { node: string; nodes(): Promise<ClusterNodeRow[]> };
  /** TLS-RPT counters (`tls.report`); absent when TLS-RPT is off. */
  tlsRpt?: TlsRptCounters;
}

/** Answers one command with already parsed arguments. */
export type Handler<N extends CommandName> = N extends StreamingCommand ? StreamHandler<N>
  : (args: ArgsOf<N>, ctx: ControlContext) => Promise<ResultOf<N>>;

/** Answers a streaming command: `emit` sends one event; resolves (or stops) when `signal` aborts. */
export type StreamHandler<N extends CommandName> = (
  args: ArgsOf<N>,
  ctx: ControlContext,
  emit: (event: ResultOf<N>) => void,
  signal: AbortSignal,
) => Promise<void>;

/** One handler for every declared command (a missing one is a type error). */
export type Handlers = { [N in CommandName]: Handler<N> };

/** The handlers of the commands named `${G}.something`. */
export type GroupHandlers<G extends string> = {
  [N in CommandName as N extends `${G}.${string}` ? N : never]: Handler<N>;
};
