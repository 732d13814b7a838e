/**
 * Argument schemas of the control commands. Each field says what it expects in
 * words an operator understands; {@link formatArgIssues} in api.ts turns a
 * failed parse into "argument "x" = ...: expected ...". Parsing also normalizes:
 * domains are lower-cased without a trailing dot, durations become milliseconds,
 * and `{id}` / `{domain}` / `{all}` become one {@link Selection}.
 * @module
 */
import { z } from "zod";
import { parseDuration } from "../config/mod.ts";
import type { DnsRecordType } from "../dns/mod.ts";
import { type MessageStatus, PRIORITIES } from "../queue/mod.ts";
import type { Selector } from "./selector.ts";

/** Every message status, in lifecycle order. */
export const MESSAGE_STATUSES = [
  "queued",
  "delivering",
  "deferred",
  "frozen",
  "delivered",
  "failed",
] as const satisfies readonly MessageStatus[];

/** Log levels the daemon can be set to. */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;

/** A log level the daemon can be set to. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Which messages an operation is for. */
export type Selection = { id: string } | { all: true; domain?: string } | { domain: string };

/** A bulk operation by selector: the messages to act on, and whether only to count them. */
export interface BulkTarget {
  bulk: Selector;
  dryRun: boolean;
}

/** What `queue retry|bounce|delete` act on: one of the classic selections, or a bulk selector. */
export type ActionTarget = Selection | BulkTarget;

/** `queue freeze` / `unfreeze` without a target: everything, including mail that arrives meanwhile. */
export type FreezeTarget = Selection | { everything: true };

const DOMAIN_RE = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i;
const ID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const TARGET_RE = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/;
const MAX_TEXT = 1000;

const EXPECT_ID = 'expected a message id (26 characters, e.g. from "queue list")';
const EXPECT_DOMAIN = "expected a domain name, e.g. example.com or *.example.com";
const EXPECT_DURATION = 'expected a duration like "30m", "2h" or "1d"';

/** A string of at most 1000 characters; `expected` is the message for anything else. */
const text = (expected: string) => z.string({ error: expected }).max(MAX_TEXT, { error: expected });

/** `""` and `null` mean "not given", as `undefined` does. */
const blankToUndefined = (v: string | null | undefined) => (v ? v : undefined);

const messageId = text(EXPECT_ID).regex(ID_RE, { error: EXPECT_ID });

const domain = text(EXPECT_DOMAIN)
  .regex(DOMAIN_RE, { error: EXPECT_DOMAIN })
  .transform((d) => d.toLowerCase().replace(/\.$/, ""));

const optionalDomain = text(EXPECT_DOMAIN).nullable().optional().transform(blankToUndefined).pipe(
  domain.optional(),
);

const EXPECT_NAME = "expected a DNS name, e.g. example.com or _25._tcp.mx.example.com";
const dnsName = text(EXPECT_NAME).regex(
  /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$|^\.$/i,
  {
    error: EXPECT_NAME,
  },
);
const DNS_TYPES = ["A", "AAAA", "MX", "TXT", "TLSA", "CNAME", "SOA"] as const satisfies readonly DnsRecordType[];
const dnsType = z.string({ error: `expected one of ${DNS_TYPES.join(", ")}` }).default("A")
  .transform((t) => t.toUpperCase()).pipe(z.enum(DNS_TYPES, { error: `expected one of ${DNS_TYPES.join(", ")}` }));

const EXPECT_STATUS = `expected one of ${MESSAGE_STATUSES.join(", ")}`;
const optionalStatus = text(EXPECT_STATUS).nullable().optional().transform(blankToUndefined).pipe(
  z.enum(MESSAGE_STATUSES, { error: EXPECT_STATUS }).optional(),
);

const EXPECT_PRIORITY = `expected one of ${PRIORITIES.join(", ")}`;
const priority = text(EXPECT_PRIORITY).pipe(z.enum(PRIORITIES as ["critical"], { error: EXPECT_PRIORITY }));
const optionalPriority = text(EXPECT_PRIORITY).nullable().optional().transform(blankToUndefined).pipe(
  priority.optional(),
);

const EXPECT_LEVEL = `expected one of ${LOG_LEVELS.join(", ")}`;
const logLevel = text(EXPECT_LEVEL).pipe(z.enum(LOG_LEVELS, { error: EXPECT_LEVEL }));

const EXPECT_LIMIT = "expected a whole number 1-100000";
const limit = z.number({ error: EXPECT_LIMIT })
  .refine((n) => Number.isInteger(n) && n >= 1 && n <= 100_000, { error: EXPECT_LIMIT })
  .default(100);

const EXPECT_RATE = "expected messages per second (0 removes the limit)";
const rate = z.number({ error: EXPECT_RATE }).min(0, { error: EXPECT_RATE });

const duration = text(EXPECT_DURATION).transform((t, ctx) => {
  const ms = parseDuration(t);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({ code: "custom", message: EXPECT_DURATION, input: t });
    return z.NEVER;
  }
  return ms;
});

const EXPECT_TARGET = "expected HOST:PORT, e.g. 10.0.0.5:25";
const target = text(EXPECT_TARGET).transform((t, ctx) => {
  const m = TARGET_RE.exec(t);
  const port = Number(m?.[3]);
  const host = m?.[1] ?? m?.[2];
  if (!host || port < 1 || port > 65535) {
    ctx.addIssue({ code: "custom", message: EXPECT_TARGET, input: t });
    return z.NEVER;
  }
  return { host, port };
});

const selectionFields = z.object({
  id: messageId.optional(),
  domain: optionalDomain,
  all: z.boolean({ error: "expected true or false" }).optional(),
});

function toSelection(a: z.output<typeof selectionFields>): Selection | undefined {
  if (a.id !== undefined) return { id: a.id };
  if (a.all === true) return { all: true, domain: a.domain };
  if (a.domain) return { domain: a.domain };
  return undefined;
}

/** `{id}`, `{all, domain?}` or `{domain}`; none of them is refused, naming the verb. */
const selection = (verb: string) =>
  selectionFields.transform((a, ctx): Selection => {
    const s = toSelection(a);
    if (s) return s;
    ctx.addIssue({ code: "custom", message: `say which messages to ${verb}: a message id, --domain DOMAIN or --all` });
    return z.NEVER;
  });

/** An id, or a domain; no id and no domain means everything. */
const freezeTarget = selectionFields.transform((a): FreezeTarget =>
  a.id === undefined && !a.domain ? { everything: true } : toSelection(a) ?? { everything: true }
);

const EXPECT_GLOB = "expected an address pattern, e.g. *@example.com (* and ? are wildcards)";
const optionalGlob = text(EXPECT_GLOB).nullable().optional().transform((v) => v ?? undefined);
const EXPECT_IDS = "expected a list of message ids (at most 100000)";

/** The fields of a bulk selector (besides id, domain and all). */
const bulkFields = {
  ids: z.array(messageId, { error: EXPECT_IDS }).max(100_000, { error: EXPECT_IDS }).optional(),
  from: optionalGlob,
  to: optionalGlob,
  status: optionalStatus,
  olderThan: text(EXPECT_DURATION).nullable().optional().transform(blankToUndefined).pipe(duration.optional()),
  dryRun: z.boolean({ error: "expected true or false" }).optional(),
};
const targetFields = selectionFields.extend(bulkFields);
type TargetFields = z.output<typeof targetFields>;

const isBulk = (a: TargetFields) =>
  a.ids !== undefined || a.from !== undefined || a.to !== undefined || a.status !== undefined ||
  a.olderThan !== undefined || a.dryRun !== undefined;

/** The bulk selector of `a`, or undefined when it names no messages at all. */
function toBulk(a: TargetFields): BulkTarget | undefined {
  const ids = a.id !== undefined ? [a.id, ...(a.ids ?? [])] : a.ids;
  const bulk: Selector = {
    ids,
    domain: a.domain,
    from: a.from,
    to: a.to,
    status: a.status,
    olderThanMs: a.olderThan,
    all: a.all === true ? true : undefined,
  };
  const named = Object.values(bulk).some((v) => v !== undefined);
  return named ? { bulk, dryRun: a.dryRun === true } : undefined;
}

const SELECTORS = "--domain, --from, --to, --status, --older-than, ids on stdin (-) or --all";

/** A classic selection when only id/domain/all are given (kept as before), else a bulk selector. */
const actionTarget = (verb: string, classic: "selection" | "id") =>
  targetFields.transform((a, ctx): ActionTarget => {
    if (!isBulk(a)) {
      if (classic === "id" && a.id !== undefined) return { id: a.id };
      const s = classic === "selection" ? toSelection(a) : undefined;
      if (s) return s;
    }
    const b = toBulk(a);
    if (b) return b;
    const words = classic === "selection" ? "a message id, --domain DOMAIN or --all" : `a message id or ${SELECTORS}`;
    ctx.addIssue({ code: "custom", message: `say which messages to ${verb}: ${words}` });
    return z.NEVER;
  });

/** Always a bulk selector (`queue hold|release`). */
const bulkTarget = (verb: string) =>
  targetFields.transform((a, ctx): BulkTarget => {
    const b = toBulk(a);
    if (b) return b;
    ctx.addIssue({ code: "custom", message: `say which messages to ${verb}: a message id or ${SELECTORS}` });
    return z.NEVER;
  });

const EXPECT_REASON = "expected a short text for the DSN's diagnostic (one line)";
const reason = text(EXPECT_REASON).regex(/^[^\r\n]*$/, { error: EXPECT_REASON }).nullable().optional()
  .transform(blankToUndefined);

/** `queue cat`: which part of the message. */
const catPart = z.enum(["all", "headers", "body"], { error: 'expected "all", "headers" or "body"' }).default("all");

/** The argument schema of every command (the declaration in api.ts pairs them with result types). */
export const ARGS = {
  none: z.object({}),
  logLevel: z.object({ level: logLevel }),
  list: z.object({
    status: optionalStatus,
    domain: optionalDomain,
    priority: optionalPriority,
    from: optionalGlob,
    to: optionalGlob,
    limit,
  }),
  id: z.object({ id: messageId }),
  retry: actionTarget("retry", "selection"),
  bounce: z.object({ reason }).and(actionTarget("bounce", "selection")).transform(
    ({ reason, ...target }): ActionTarget & { reason?: string } =>
      reason === undefined ? target as ActionTarget : { ...target as ActionTarget, reason },
  ),
  delete: actionTarget("delete", "id"),
  hold: bulkTarget("hold"),
  release: bulkTarget("release"),
  cat: z.object({ id: messageId, part: catPart }),
  sessionId: z.object({ id: text('expected a session id from "smtp connections"').min(1) }),
  trace: z.object({ peer: text("expected an IP address").nullable().optional().transform(blankToUndefined) }),
  freeze: freezeTarget,
  unfreeze: freezeTarget,
  suspend: z.object({ domain, for: duration }),
  domain: z.object({ domain }),
  setOverride: z.object({ domain, target }),
  rateLimit: z.object({ domain, rate }),
  dnsLookup: z.object({ name: dnsName, type: dnsType }),
  tlsReport: z.object({ domain: optionalDomain }),
  setPriority: z.object({ priority }).and(selection("reprioritize")),
};
