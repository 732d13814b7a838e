/**
 * The queue tools modelled on postsuper/postcat/kcli: selector options shared by
 * `queue delete|retry|hold|release|bounce`, how their answers read, and the
 * inspection commands (`queue cat`, `smtp kill`, `message history`, `trace smtp`).
 * @module
 */
import type { BulkResult, HistoryResult, TraceEvent } from "../control/mod.ts";
import { iso, table } from "./ctl_format.ts";
import { at, type CommandSpec, type CtlOptions, spec, UsageError } from "./ctl_spec.ts";

/** The selector options of the bulk commands. */
export const BULK_OPTIONS: (keyof CtlOptions)[] = ["domain", "from", "to", "status", "older-than", "all", "dry-run"];

/** The selector part of a bulk command's usage line. */
export const SELECTOR_USAGE = "[--domain D] [--from GLOB] [--to GLOB] [--status S] [--older-than DURATION] [--dry-run]";

const hasSelector = (o: CtlOptions) =>
  o.domain !== undefined || o.from !== undefined || o.to !== undefined || o.status !== undefined ||
  o["older-than"] !== undefined || !!o.all || o.stdinIds !== undefined;

/** The control arguments of a bulk command: ID, "-" (ids on stdin) and/or selectors. */
export const bulkArgs = (verb: string) => (pos: string[], o: CtlOptions) => {
  const id = pos[0] && pos[0] !== "-" ? pos[0] : undefined;
  if (!id && !hasSelector(o)) {
    throw new UsageError(
      `say which messages to ${verb}: ID, - (ids on stdin), --domain, --from, --to, --status, --older-than or --all`,
    );
  }
  return {
    id,
    ids: o.stdinIds,
    domain: o.domain,
    from: o.from,
    to: o.to,
    status: o.status,
    olderThan: o["older-than"],
    all: o.all || undefined,
    dryRun: o["dry-run"] || undefined,
  };
};

const PAST: Record<BulkResult["action"], string> = {
  delete: "deleted",
  retry: "scheduled for immediate delivery",
  hold: "held",
  release: "released",
  bounce: "bounced",
};

/** `N message(s) match (dry run)` or `deleted 3 of 3 matching message(s)`. */
export function bulkText(r: BulkResult): string {
  if (r.dryRun) return `${r.matched} message(s) match; nothing changed (dry run)`;
  return `${r.changed} of ${r.matched} matching message(s) ${PAST[r.action]}`;
}

const field = (
  e: Record<string, unknown>,
  k: string,
) => (e[k] === undefined || e[k] === null ? undefined : String(e[k]));

/** `message history`: one line per audit event. */
export function historyText(r: HistoryResult): string {
  const rows = r.events.map((e) => [
    field(e, "ts") ?? "-",
    field(e, "type") ?? "-",
    e.type === "control" ? `${field(e, "command")} ${field(e, "result")}` : field(e, "outcome"),
    field(e, "recipient"),
    field(e, "mx"),
    field(e, "reply") ?? field(e, "error"),
  ]);
  return `Message ${r.id}: ${r.events.length} event(s) in ${r.files.length} audit file(s)\n` +
    table(["TIME", "TYPE", "WHAT", "RECIPIENT", "MX", "REPLY"], rows);
}

/** One traced line: `time side session peer > line` (">" sent by the peer, "<" by us). */
export const traceLine = (e: TraceEvent) =>
  `${iso(e.at)} ${e.side} ${e.session} ${e.peer} ${e.direction === "in" ? ">" : "<"} ${e.line}`;

const decode = (b64: string) => new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));

/** Commands beyond the classic table: cat, hold/release, kill, history, trace. */
export const INSPECT_COMMANDS = {
  queue: {
    cat: spec("queue.cat", {
      usage: "queue cat ID [--headers | --body]",
      summary: "print the stored message, or its header section or body (postcat -q)",
      options: ["headers", "body"],
      positionals: ["id"],
      args: (p, o) => {
        if (o.headers && o.body) throw new UsageError("give --headers or --body, not both");
        const part: "headers" | "body" | "all" = o.headers ? "headers" : o.body ? "body" : "all";
        return { id: at(p, 0), part };
      },
      text: (r) => decode(r.base64).replace(/\r?\n$/, ""),
    }),
    hold: spec("queue.hold", {
      usage: `queue hold ID | - | ${SELECTOR_USAGE}`,
      summary: "freeze the selected messages (postsuper -h)",
      options: BULK_OPTIONS,
      positionals: ["id?"],
      args: bulkArgs("hold"),
      text: bulkText,
    }),
    release: spec("queue.release", {
      usage: `queue release ID | - | ${SELECTOR_USAGE}`,
      summary: "unfreeze the selected messages, due now (postsuper -H)",
      options: BULK_OPTIONS,
      positionals: ["id?"],
      args: bulkArgs("release"),
      text: bulkText,
    }),
  },
  smtp: {
    kill: spec("smtp.kill", {
      usage: "smtp kill SESSION",
      summary: "end an SMTP session now (421, then the connection is closed)",
      positionals: ["session"],
      args: (p) => ({ id: at(p, 0) }),
      text: (r) => `session ${r.id} ended`,
    }),
  },
  message: {
    history: spec("message.history", {
      usage: "message history ID",
      summary: "every attempt and event of a message, from the audit log (also after it left the queue)",
      positionals: ["id"],
      args: (p) => ({ id: at(p, 0) }),
      text: historyText,
    }),
  },
  trace: {
    smtp: spec("trace.smtp", {
      usage: "trace smtp [--peer ADDR]",
      summary: "stream SMTP conversations live, inbound and outbound, until interrupted",
      options: ["peer"],
      args: (_p, o) => ({ peer: o.peer }),
      text: traceLine,
    }),
  },
} satisfies Record<string, Record<string, CommandSpec>>;
