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
import { type MessageStatus, PRIORITIES } from "../queue/mod.ts";

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

/** Like {@link selection}, but no id and no domain means everything. */
const freezeTarget = selectionFields.transform((a): FreezeTarget =>
  a.id === undefined && !a.domain ? { everything: true } : toSelection(a) ?? { everything: true }
);

/** The argument schema of every command (the declaration in api.ts pairs them with result types). */
export const ARGS = {
  none: z.object({}),
  logLevel: z.object({ level: logLevel }),
  list: z.object({ status: optionalStatus, domain: optionalDomain, priority: optionalPriority, limit }),
  id: z.object({ id: messageId }),
  retry: selection("retry"),
  bounce: selection("bounce"),
  freeze: freezeTarget,
  unfreeze: freezeTarget,
  suspend: z.object({ domain, for: duration }),
  domain: z.object({ domain }),
  setOverride: z.object({ domain, target }),
  rateLimit: z.object({ domain, rate }),
  setPriority: z.object({ priority }).and(selection("reprioritize")),
};
