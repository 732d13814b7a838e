/**
 * Every `empathctl <group> <command>`: its usage, the options it takes, how its
 * arguments become a control request, and how the answer is shown to people.
 * @module
 */
import { age, bytes, clip, iso, since, table, until } from "./ctl_format.ts";

/** Parsed options that commands may use. */
export interface CtlOptions {
  status?: string;
  domain?: string;
  limit?: string;
  all?: boolean;
  yes?: boolean;
  for?: string;
  watch?: boolean;
  interval?: string;
  count?: string;
}

/** A usage error: exit code 2. */
export class UsageError extends Error {
  readonly code = "USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One command of the CLI. */
export interface CommandSpec {
  usage: string;
  summary: string;
  /** Option names (without --) this command accepts besides the global ones. */
  options: (keyof CtlOptions)[];
  /** Positional argument names; a trailing "?" marks an optional one. */
  positionals: string[];
  /** The control request. */
  request(pos: string[], opts: CtlOptions): { command: string; args: Record<string, unknown> };
  /** Text for people. */
  text(result: Any): string;
}

// deno-lint-ignore no-explicit-any
type Any = any;

const statusLine = (counts: Record<string, number>) => Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ");

const idOrSelection = (verb: string) => (pos: string[], o: CtlOptions) => {
  if (pos[0] && (o.all || o.domain)) throw new UsageError(`give a message id or --domain/--all, not both`);
  if (!pos[0] && !o.all && !o.domain) {
    throw new UsageError(`say which messages to ${verb}: ID, --domain DOMAIN or --all`);
  }
  return { id: pos[0], domain: o.domain, all: o.all || undefined };
};

const messageRows = (r: Any) =>
  table(
    ["ID", "STATUS", "AGE", "SIZE", "FROM", "RCPT", "NEXT", "LAST REPLY"],
    r.messages.map((m: Any) => [
      m.id,
      m.status,
      since(m.receivedAt),
      bytes(m.size),
      clip(m.sender || "<>", 30),
      m.pending === m.recipients ? m.recipients : `${m.pending}/${m.recipients}`,
      m.status === "queued" || m.status === "deferred" ? until(m.nextAttemptAt) : "-",
      clip(m.lastReply, 50),
    ]),
  ) + (r.truncated ? "\n(more messages match: raise --limit)" : "") + `\n${r.messages.length} message(s)`;

function viewText(r: Any): string {
  const lines = [
    `Message ${r.id}`,
    `  status      ${r.status}${r.inFlight ? " (delivery in progress)" : ""}`,
    `  received    ${iso(r.receivedAt)} (${since(r.receivedAt)} ago) from ${r.client.address}${
      r.client.helo ? ` (${r.client.helo})` : ""
    } on ${r.client.listener}${r.client.user ? `, user ${r.client.user}` : ""}`,
    `  sender      <${r.sender}>`,
    `  size        ${r.size} bytes${r.dsn?.envid ? `, ENVID ${r.dsn.envid}` : ""}${
      r.dsn?.ret ? `, RET ${r.dsn.ret}` : ""
    }`,
    `  next        ${
      r.status === "queued" || r.status === "deferred" ? `${iso(r.nextAttemptAt)} (${until(r.nextAttemptAt)})` : "-"
    }`,
    "Headers",
    ...Object.entries(r.headers ?? {}).map(([k, v]) => `  ${k.padEnd(11)} ${v}`),
    "Recipients",
    table(
      ["  ADDRESS", "STATUS", "TRIES", "LAST REPLY"],
      r.recipients.map((x: Any) => [`  ${x.address}`, x.status, x.attempts, clip(x.lastReply, 70)]),
    ),
    `Attempts (${r.attempts.length})`,
  ];
  for (const a of r.attempts) {
    lines.push(`  ${iso(a.at)}  ${a.server ?? "no server"}${a.tls ? " TLS" : ""}  ${a.durationMs} ms`);
    for (const x of a.result) lines.push(`    ${x.address}: ${x.outcome}: ${x.reply}`);
  }
  if (Object.keys(r.metadata ?? {}).length) lines.push("Metadata", `  ${JSON.stringify(r.metadata)}`);
  return lines.join("\n");
}

function statusText(r: Any): string {
  const reload = r.lastReload
    ? `last reload ${iso(r.lastReload.at)}: ${
      r.lastReload.ok
        ? `ok; changed ${r.lastReload.changed.join(", ") || "nothing"}; needs restart: ${
          r.lastReload.needsRestart.join(", ") || "nothing"
        }`
        : `rejected: ${r.lastReload.error}`
    }`
    : "not reloaded since start";
  return [
    `empath ${r.version}, pid ${r.pid}, up ${age(r.uptimeSeconds)}`,
    `config      ${r.configPath} (${reload})`,
    `listeners   ${r.listeners.map((l: Any) => `${l.name} ${l.host}:${l.port} (${l.role})`).join(", ")}`,
    `queue       ${statusLine(r.queue)}; oldest ${age(r.oldestAgeSeconds)}`,
    `delivery    ${r.deliveryEnabled ? "enabled" : "disabled"}${
      r.deliveryFrozen ? ", FROZEN" : ""
    }, ${r.inFlight} in flight`,
    `smtp        ${r.smtpSessions} session(s)`,
    `dns cache   ${r.dnsCacheEntries} entries`,
    `log level   ${r.logLevel}`,
  ].join("\n");
}

/** Text of `queue stats`; `previous` gives rates between two samples (watch mode). */
export function statsText(r: Any, previous?: Any): string {
  const span = previous ? (r.at - previous.at) / 1000 : (r.at - r.startedAt) / 1000;
  const base = previous?.totals ?? { received: 0, delivered: 0, deferred: 0, failed: 0 };
  const rate = (k: string) => (span > 0 ? ((r.totals[k] - base[k]) / span).toFixed(1) : "0.0");
  return [
    `queue       ${r.total} message(s): ${statusLine(r.counts)}`,
    `oldest      ${age(r.oldestAgeSeconds)}`,
    `rates/s     received ${rate("received")}, delivered ${rate("delivered")}, deferred ${rate("deferred")}, failed ${
      rate("failed")
    } (${previous ? `last ${span.toFixed(1)}s` : "since start"})`,
    r.domains.length
      ? table(["DOMAIN", "MESSAGES"], r.domains.map((d: Any) => [d.domain, d.messages]))
      : "no domains queued",
  ].join("\n");
}

const simple = (command: string, text: (r: Any) => string, usage: string, summary: string): CommandSpec => ({
  usage,
  summary,
  options: [],
  positionals: [],
  request: () => ({ command, args: {} }),
  text,
});

/** The command table: group → command → spec. */
export const COMMANDS: Record<string, Record<string, CommandSpec>> = {
  system: {
    ping: simple("system.ping", (r) => `pong from empath ${r.version}`, "system ping", "check the daemon answers"),
    status: simple(
      "system.status",
      statusText,
      "system status",
      "version, uptime, listeners, queue, DNS cache, reload",
    ),
    "reload-config": simple(
      "system.reload-config",
      (r) =>
        `config reloaded: changed ${r.changed.join(", ") || "nothing"}; needs a restart: ${
          r.needsRestart.join(", ") || "nothing"
        }`,
      "system reload-config",
      "re-read config.toml and apply what can change at runtime",
    ),
    "log-level": {
      usage: "system log-level LEVEL",
      summary: "change the log level now (trace, debug, info, warning, error, fatal)",
      options: [],
      positionals: ["level"],
      request: (p) => ({ command: "system.log-level", args: { level: p[0] } }),
      text: (r) => `log level ${r.previous} -> ${r.level}`,
    },
  },
  queue: {
    list: {
      usage: "queue list [--status S] [--domain D] [--limit N]",
      summary: "messages in the queue, oldest first",
      options: ["status", "domain", "limit"],
      positionals: [],
      request: (_p, o) => ({
        command: "queue.list",
        args: { status: o.status, domain: o.domain, limit: o.limit === undefined ? undefined : Number(o.limit) },
      }),
      text: messageRows,
    },
    view: {
      usage: "queue view ID",
      summary: "envelope, headers, per-recipient status and every attempt of one message",
      options: [],
      positionals: ["id"],
      request: (p) => ({ command: "queue.view", args: { id: p[0] } }),
      text: viewText,
    },
    retry: {
      usage: "queue retry ID | --all [--domain D] | --domain D",
      summary: "make messages due now",
      options: ["all", "domain"],
      positionals: ["id?"],
      request: (p, o) => ({ command: "queue.retry", args: idOrSelection("retry")(p, o) }),
      text: (r) => `${r.retried} message(s) scheduled for immediate delivery`,
    },
    delete: {
      usage: "queue delete ID [--yes]",
      summary: "remove a message and its data (asks first unless --yes)",
      options: ["yes"],
      positionals: ["id"],
      request: (p) => ({ command: "queue.delete", args: { id: p[0] } }),
      text: (r) => `deleted ${r.deleted}`,
    },
    bounce: {
      usage: "queue bounce ID | --domain D | --all",
      summary: "fail pending recipients now and send the sender a DSN",
      options: ["domain", "all"],
      positionals: ["id?"],
      request: (p, o) => ({ command: "queue.bounce", args: idOrSelection("bounce")(p, o) }),
      text: (r) => `${r.bounced} message(s) bounced`,
    },
    freeze: {
      usage: "queue freeze [ID | --domain D]",
      summary: "hold messages (no argument: everything, including new mail, until unfreeze)",
      options: ["domain"],
      positionals: ["id?"],
      request: (p, o) => ({ command: "queue.freeze", args: { id: p[0], domain: o.domain } }),
      text: (r) =>
        r.scope === "all" ? `delivery frozen; ${r.frozen} queued message(s) held` : `${r.frozen} message(s) frozen`,
    },
    unfreeze: {
      usage: "queue unfreeze [ID | --domain D]",
      summary: "release held messages (no argument: everything)",
      options: ["domain"],
      positionals: ["id?"],
      request: (p, o) => ({ command: "queue.unfreeze", args: { id: p[0], domain: o.domain } }),
      text: (r) =>
        r.scope === "all" ? `delivery resumed; ${r.unfrozen} message(s) released` : `${r.unfrozen} message(s) unfrozen`,
    },
    suspend: {
      usage: "queue suspend DOMAIN --for DURATION",
      summary: "hold delivery to a destination; lifts itself when the time is up",
      options: ["for"],
      positionals: ["domain"],
      request: (p, o) => {
        if (!o.for) throw new UsageError("queue suspend needs --for DURATION, e.g. --for 30m");
        return { command: "queue.suspend", args: { domain: p[0], for: o.for } };
      },
      text: (r) => `delivery to ${r.domain} suspended until ${iso(r.until)} (${until(r.until)})`,
    },
    resume: {
      usage: "queue resume DOMAIN",
      summary: "cancel a suspension",
      options: [],
      positionals: ["domain"],
      request: (p) => ({ command: "queue.resume", args: { domain: p[0] } }),
      text: (r) => `delivery to ${r.domain} resumed`,
    },
    suspended: simple(
      "queue.suspended",
      (r) =>
        r.suspensions.length
          ? table(["DOMAIN", "UNTIL", "LIFTS"], r.suspensions.map((s: Any) => [s.domain, iso(s.until), until(s.until)]))
          : "no destination is suspended",
      "queue suspended",
      "list suspended destinations",
    ),
    summary: simple(
      "queue.summary",
      (r) =>
        r.destinations.length
          ? table(
            ["DESTINATION", "MESSAGES", "OLDEST", "STATE", "CONN", "LAST ERROR"],
            r.destinations.map((d: Any) => [
              d.domain,
              d.messages,
              age(d.oldestAgeSeconds),
              d.suspendedUntil
                ? `suspended ${until(d.suspendedUntil)}`
                : d.circuit === "closed"
                ? "ok"
                : `circuit ${d.circuit}`,
              d.activeConnections,
              clip(d.lastError, 70),
            ]),
          )
          : "the queue is empty",
      "queue summary",
      "one row per destination: queued count, oldest age, last error, suspended/circuit state",
    ),
    "process-now": simple(
      "queue.process-now",
      (r) => `${r.scheduled} message(s) scheduled for immediate delivery`,
      "queue process-now",
      "attempt every waiting message now",
    ),
    stats: {
      usage: "queue stats [--watch] [--interval SECONDS] [--count N]",
      summary: "counts by status and domain, oldest age, rates (watch: redraw every interval)",
      options: ["watch", "interval", "count"],
      positionals: [],
      request: () => ({ command: "queue.stats", args: {} }),
      text: (r) => statsText(r),
    },
  },
  dns: {
    "list-cache": simple(
      "dns.list-cache",
      (r) =>
        table(
          ["NAME", "TYPE", "EXPIRES", "VALUE"],
          r.entries.map((e: Any) => [e.name, e.type, until(e.expiresAt), clip(e.error ?? JSON.stringify(e.value), 80)]),
        ) + `\n${r.entries.length} entries`,
      "dns list-cache",
      "cached MX and address lookups",
    ),
    "clear-cache": simple(
      "dns.clear-cache",
      (r) => `${r.cleared} entries removed`,
      "dns clear-cache",
      "empty the DNS cache",
    ),
    refresh: {
      usage: "dns refresh DOMAIN",
      summary: "drop a domain's cached answers and look it up again",
      options: [],
      positionals: ["domain"],
      request: (p) => ({ command: "dns.refresh", args: { domain: p[0] } }),
      text: (r) =>
        `${r.domain} refreshed\n` +
        table(
          ["NAME", "TYPE", "VALUE"],
          r.entries.map((e: Any) => [e.name, e.type, clip(e.error ?? JSON.stringify(e.value), 80)]),
        ),
    },
    "list-overrides": simple(
      "dns.list-overrides",
      (r) =>
        r.overrides.length
          ? table(["DOMAIN", "TARGET"], r.overrides.map((o: Any) => [o.domain, `${o.host}:${o.port}`]))
          : "no overrides",
      "dns list-overrides",
      "domains routed to a fixed host (config and runtime)",
    ),
    "set-override": {
      usage: "dns set-override DOMAIN HOST:PORT",
      summary: "route a domain to a fixed host until removed or restart",
      options: [],
      positionals: ["domain", "target"],
      request: (p) => ({ command: "dns.set-override", args: { domain: p[0], target: p[1] } }),
      text: (r) => `${r.domain} -> ${r.host}:${r.port}`,
    },
    "remove-override": {
      usage: "dns remove-override DOMAIN",
      summary: "remove a runtime override",
      options: [],
      positionals: ["domain"],
      request: (p) => ({ command: "dns.remove-override", args: { domain: p[0] } }),
      text: (r) => `override for ${r.domain} removed`,
    },
  },
  smtp: {
    connections: simple(
      "smtp.connections",
      (r) =>
        table(
          ["ID", "LISTENER", "PEER", "STATE", "TLS", "USER", "AGE"],
          r.sessions.map((
            s: Any,
          ) => [s.id, s.listener, s.peer, s.state, s.tls ? "yes" : "no", s.user, age(s.ageSeconds)]),
        ) + `\n${r.sessions.length} session(s)`,
      "smtp connections",
      "active SMTP sessions",
    ),
  },
  delivery: {
    "rate-limit": {
      usage: "delivery rate-limit DOMAIN RATE",
      summary: "messages per second to a destination (0 removes the runtime limit)",
      options: [],
      positionals: ["domain", "rate"],
      request: (p) => {
        const rate = Number(p[1]);
        if (!Number.isFinite(rate) || rate < 0) {
          throw new UsageError(`RATE "${p[1]}": expected messages per second, e.g. 5 or 0.5`);
        }
        return { command: "delivery.rate-limit", args: { domain: p[0], rate } };
      },
      text: (r) =>
        r.rate === null ? `runtime rate limit for ${r.domain} removed` : `${r.domain}: at most ${r.rate} message(s)/s`,
    },
  },
};
