/**
 * Every `empathctl <group> <command>`: its usage, the options it takes, which
 * control API command it calls with which arguments, and how the typed answer
 * is shown to people.
 * @module
 */
import { iso, table, until } from "./ctl_format.ts";
import {
  cacheText,
  clusterNodesText,
  destinationsText,
  messageRows,
  refreshedText,
  sessionsText,
  statsText,
  statusText,
  suspensionsText,
  viewText,
} from "./ctl_text.ts";
import { at, type CommandSpec, type CtlOptions, spec, UsageError } from "./ctl_spec.ts";
import { DNS_LOOKUP, TLS_COMMANDS } from "./ctl_security.ts";
import { BULK_OPTIONS, bulkArgs, bulkText, INSPECT_COMMANDS, SELECTOR_USAGE } from "./ctl_bulk.ts";

export { type CommandSpec, type CtlOptions, UsageError } from "./ctl_spec.ts";
import { dkimCheckText } from "./ctl_dkim_text.ts";

const noArgs = () => ({});

/** An id, or --domain / --all (not both), for commands on waiting messages. */
const idOrSelection = (verb: string) => (pos: string[], o: CtlOptions) => {
  if (pos[0] && (o.all || o.domain)) throw new UsageError(`give a message id or --domain/--all, not both`);
  if (!pos[0] && !o.all && !o.domain) {
    throw new UsageError(`say which messages to ${verb}: ID, --domain DOMAIN or --all`);
  }
  return { id: pos[0], domain: o.domain, all: o.all || undefined };
};

/** The command table: group → command → spec. */
export const COMMANDS: Record<string, Record<string, CommandSpec>> = {
  system: {
    ping: spec("system.ping", {
      usage: "system ping",
      summary: "check the daemon answers",
      args: noArgs,
      text: (r) => `pong from empath ${r.version}`,
    }),
    status: spec("system.status", {
      usage: "system status",
      summary: "version, uptime, listeners, queue, DNS cache, reload",
      args: noArgs,
      text: statusText,
    }),
    "reload-config": spec("system.reload-config", {
      usage: "system reload-config",
      summary: "re-read config.toml and apply what can change at runtime",
      args: noArgs,
      text: (r) =>
        `config reloaded: changed ${r.changed.join(", ") || "nothing"}; in effect since start: ${
          r.applied?.join(", ") || "nothing"
        }; needs a restart: ${r.needsRestart.join(", ") || "nothing"}`,
    }),
    "log-level": spec("system.log-level", {
      usage: "system log-level LEVEL",
      summary: "change the log level now (trace, debug, info, warning, error, fatal)",
      positionals: ["level"],
      args: (p) => ({ level: at(p, 0) }),
      text: (r) => `log level ${r.previous} -> ${r.level}`,
    }),
  },
  queue: {
    list: spec("queue.list", {
      usage: "queue list [--status S] [--domain D] [--priority LEVEL] [--from GLOB] [--to GLOB] [--limit N]",
      summary: "messages in the queue, oldest first (--json: with every recipient and its state)",
      options: ["status", "domain", "priority", "from", "to", "limit"],
      // A limit that is not a number goes out as null (JSON has no NaN) and the daemon refuses it.
      args: (_p, o) => ({
        status: o.status,
        domain: o.domain,
        from: o.from,
        to: o.to,
        priority: o.priority,
        limit: o.limit === undefined ? undefined : Number(o.limit),
      }),
      text: messageRows,
    }),
    view: spec("queue.view", {
      usage: "queue view ID",
      summary: "envelope, headers, per-recipient status and every attempt of one message",
      positionals: ["id"],
      args: (p) => ({ id: at(p, 0) }),
      text: viewText,
    }),
    retry: spec("queue.retry", {
      usage: `queue retry ID | - | --all | ${SELECTOR_USAGE}`,
      summary: "make messages due now",
      options: BULK_OPTIONS,
      positionals: ["id?"],
      args: bulkArgs("retry"),
      text: (r) => "matched" in r ? bulkText(r) : `${r.retried} message(s) scheduled for immediate delivery`,
    }),
    delete: spec("queue.delete", {
      usage: `queue delete ID | - | ${SELECTOR_USAGE} [--yes]`,
      summary: "remove messages and their data (postsuper -d; asks first unless --yes)",
      options: ["yes", ...BULK_OPTIONS],
      positionals: ["id?"],
      args: bulkArgs("delete"),
      text: (r) => "matched" in r ? bulkText(r) : `deleted ${r.deleted}`,
    }),
    bounce: spec("queue.bounce", {
      usage: `queue bounce ID | - | --all | ${SELECTOR_USAGE} [--reason TEXT]`,
      summary: "fail pending recipients now and send the sender a DSN (the reason is its diagnostic)",
      options: ["reason", ...BULK_OPTIONS],
      positionals: ["id?"],
      args: (p, o) => ({ ...bulkArgs("bounce")(p, o), reason: o.reason }),
      text: (r) => "matched" in r ? bulkText(r) : `${r.bounced} message(s) bounced`,
    }),
    ...INSPECT_COMMANDS.queue,
    freeze: spec("queue.freeze", {
      usage: "queue freeze [ID | --domain D]",
      summary: "hold messages (no argument: everything, including new mail, until unfreeze)",
      options: ["domain"],
      positionals: ["id?"],
      args: (p, o) => ({ id: p[0], domain: o.domain }),
      text: (r) =>
        r.scope === "all" ? `delivery frozen; ${r.frozen} queued message(s) held` : `${r.frozen} message(s) frozen`,
    }),
    unfreeze: spec("queue.unfreeze", {
      usage: "queue unfreeze [ID | --domain D]",
      summary: "release held messages (no argument: everything)",
      options: ["domain"],
      positionals: ["id?"],
      args: (p, o) => ({ id: p[0], domain: o.domain }),
      text: (r) =>
        r.scope === "all" ? `delivery resumed; ${r.unfrozen} message(s) released` : `${r.unfrozen} message(s) unfrozen`,
    }),
    suspend: spec("queue.suspend", {
      usage: "queue suspend DOMAIN --for DURATION",
      summary: "hold delivery to a destination; lifts itself when the time is up",
      options: ["for"],
      positionals: ["domain"],
      args: (p, o) => {
        if (!o.for) throw new UsageError("queue suspend needs --for DURATION, e.g. --for 30m");
        return { domain: at(p, 0), for: o.for };
      },
      text: (r) => `delivery to ${r.domain} suspended until ${iso(r.until)} (${until(r.until)})`,
    }),
    resume: spec("queue.resume", {
      usage: "queue resume DOMAIN",
      summary: "cancel a suspension",
      positionals: ["domain"],
      args: (p) => ({ domain: at(p, 0) }),
      text: (r) => `delivery to ${r.domain} resumed`,
    }),
    suspended: spec("queue.suspended", {
      usage: "queue suspended",
      summary: "list suspended destinations",
      args: noArgs,
      text: (r) => suspensionsText(r.suspensions),
    }),
    summary: spec("queue.summary", {
      usage: "queue summary",
      summary: "one row per destination: queued count, oldest age, last error, suspended/circuit state",
      args: noArgs,
      text: (r) => destinationsText(r.destinations),
    }),
    "process-now": spec("queue.process-now", {
      usage: "queue process-now",
      summary: "attempt every waiting message now",
      args: noArgs,
      text: (r) => `${r.scheduled} message(s) scheduled for immediate delivery`,
    }),
    stats: spec("queue.stats", {
      usage: "queue stats [--watch] [--interval SECONDS] [--count N]",
      summary: "counts by status and domain, oldest age, rates (watch: redraw every interval)",
      options: ["watch", "interval", "count"],
      args: noArgs,
      text: (r) => statsText(r),
    }),
    "set-priority": spec("queue.set-priority", {
      usage: "queue set-priority ID LEVEL | --domain D LEVEL",
      summary: "set the delivery priority (critical, high, normal, low) of waiting messages",
      options: ["domain"],
      positionals: ["id?", "level"],
      args: (p, o) => ({ ...idOrSelection("reprioritize")(p.slice(0, -1), o), priority: at(p, p.length - 1) }),
      text: (r) => `${r.changed} message(s) reprioritized`,
    }),
  },
  dns: {
    "list-cache": spec("dns.list-cache", {
      usage: "dns list-cache",
      summary: "cached MX and address lookups",
      args: noArgs,
      text: (r) => cacheText(r.entries),
    }),
    "clear-cache": spec("dns.clear-cache", {
      usage: "dns clear-cache",
      summary: "empty the DNS cache",
      args: noArgs,
      text: (r) => `${r.cleared} entries removed`,
    }),
    refresh: spec("dns.refresh", {
      usage: "dns refresh DOMAIN",
      summary: "drop a domain's cached answers and look it up again",
      positionals: ["domain"],
      args: (p) => ({ domain: at(p, 0) }),
      text: (r) => refreshedText(r.domain, r.entries),
    }),
    "list-overrides": spec("dns.list-overrides", {
      usage: "dns list-overrides",
      summary: "domains routed to a fixed host (config and runtime)",
      args: noArgs,
      text: (r) =>
        r.overrides.length
          ? table(["DOMAIN", "TARGET"], r.overrides.map((o) => [o.domain, `${o.host}:${o.port}`]))
          : "no overrides",
    }),
    "set-override": spec("dns.set-override", {
      usage: "dns set-override DOMAIN HOST:PORT",
      summary: "route a domain to a fixed host until removed or restart",
      positionals: ["domain", "target"],
      args: (p) => ({ domain: at(p, 0), target: at(p, 1) }),
      text: (r) => `${r.domain} -> ${r.host}:${r.port}`,
    }),
    "remove-override": spec("dns.remove-override", {
      usage: "dns remove-override DOMAIN",
      summary: "remove a runtime override",
      positionals: ["domain"],
      args: (p) => ({ domain: at(p, 0) }),
      text: (r) => `override for ${r.domain} removed`,
    }),
    lookup: DNS_LOOKUP,
  },
  tls: TLS_COMMANDS,
  cluster: {
    nodes: spec("cluster.nodes", {
      usage: "cluster nodes",
      summary: "every node sharing the PostgreSQL queue: state, leases, last heartbeat",
      args: noArgs,
      text: (r) => clusterNodesText(r.nodes),
    }),
  },
  smtp: {
    connections: spec("smtp.connections", {
      usage: "smtp connections",
      summary: "active SMTP sessions",
      args: noArgs,
      text: (r) => sessionsText(r.sessions),
    }),
    ...INSPECT_COMMANDS.smtp,
  },
  message: INSPECT_COMMANDS.message,
  trace: INSPECT_COMMANDS.trace,
  delivery: {
    "rate-limit": spec("delivery.rate-limit", {
      usage: "delivery rate-limit DOMAIN RATE",
      summary: "messages per second to a destination (0 removes the runtime limit)",
      positionals: ["domain", "rate"],
      args: (p) => {
        const rate = Number(p[1]);
        if (!Number.isFinite(rate) || rate < 0) {
          throw new UsageError(`RATE "${p[1]}": expected messages per second, e.g. 5 or 0.5`);
        }
        return { domain: at(p, 0), rate };
      },
      text: (r) =>
        r.rate === null ? `runtime rate limit for ${r.domain} removed` : `${r.domain}: at most ${r.rate} message(s)/s`,
    }),
  },
  dkim: {
    // `dkim keygen` runs without a daemon: ctl_dkim.ts.
    check: spec("dkim.check", {
      usage: "dkim check DOMAIN [--selector S]",
      summary: "compare the published DKIM records with the configured private keys",
      options: ["selector"],
      positionals: ["domain"],
      args: (p, o) => ({ domain: at(p, 0), selector: o.selector }),
      text: dkimCheckText,
    }),
  },
};
