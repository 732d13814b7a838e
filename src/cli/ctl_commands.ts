/**
 * Every `empathctl <group> <command>`: its usage, the options it takes, which
 * control API command it calls with which arguments, and how the typed answer
 * is shown to people.
 * @module
 */
import type { ArgsInput, CallArgs, CommandName, ControlClient, ResultOf } from "../control/mod.ts";
import { iso, table, until } from "./ctl_format.ts";
import {
  cacheText,
  destinationsText,
  messageRows,
  refreshedText,
  sessionsText,
  statsText,
  statusText,
  suspensionsText,
  viewText,
} from "./ctl_text.ts";

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
  priority?: string;
}

/** A usage error: exit code 2. */
export class UsageError extends Error {
  readonly code = "USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A control call ready to send: its answer as data (for --json) and as text. */
export interface PreparedCall {
  command: CommandName;
  run(client: ControlClient): Promise<{ result: unknown; text(): string }>;
}

/** One command of the CLI. */
export interface CommandSpec {
  /** The control API command it calls. */
  command: CommandName;
  usage: string;
  summary: string;
  /** Option names (without --) this command accepts besides the global ones. */
  options: (keyof CtlOptions)[];
  /** Positional argument names; a trailing "?" marks an optional one. */
  positionals: string[];
  /** Checks the command line (UsageError) and builds the control call. */
  prepare(pos: string[], opts: CtlOptions): PreparedCall;
}

/** How one CLI command maps onto control command `N`. */
interface SpecDef<N extends CommandName> {
  usage: string;
  summary: string;
  options?: (keyof CtlOptions)[];
  positionals?: string[];
  args(pos: string[], opts: CtlOptions): ArgsInput<N>;
  text(result: ResultOf<N>): string;
}

/** A CLI command calling control command `name`, typed end to end. */
function spec<N extends CommandName>(name: N, def: SpecDef<N>): CommandSpec {
  return {
    command: name,
    usage: def.usage,
    summary: def.summary,
    options: def.options ?? [],
    positionals: def.positionals ?? [],
    prepare(pos, opts) {
      const args = def.args(pos, opts);
      return {
        command: name,
        async run(client) {
          const result = await client.call(name, ...([args] as CallArgs<N>));
          return { result, text: () => def.text(result) };
        },
      };
    },
  };
}

/** The positional at `i` (the CLI checked their number against the usage first). */
function at(pos: string[], i: number): string {
  const value = pos[i];
  if (value === undefined) throw new UsageError(`missing argument ${i + 1}`);
  return value;
}

const noArgs = () => ({});

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
        `config reloaded: changed ${r.changed.join(", ") || "nothing"}; needs a restart: ${
          r.needsRestart.join(", ") || "nothing"
        }`,
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
      usage: "queue list [--status S] [--domain D] [--priority LEVEL] [--limit N]",
      summary: "messages in the queue, oldest first",
      options: ["status", "domain", "priority", "limit"],
      // A limit that is not a number goes out as null (JSON has no NaN) and the daemon refuses it.
      args: (_p, o) => ({
        status: o.status,
        domain: o.domain,
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
      usage: "queue retry ID | --all [--domain D] | --domain D",
      summary: "make messages due now",
      options: ["all", "domain"],
      positionals: ["id?"],
      args: idOrSelection("retry"),
      text: (r) => `${r.retried} message(s) scheduled for immediate delivery`,
    }),
    delete: spec("queue.delete", {
      usage: "queue delete ID [--yes]",
      summary: "remove a message and its data (asks first unless --yes)",
      options: ["yes"],
      positionals: ["id"],
      args: (p) => ({ id: at(p, 0) }),
      text: (r) => `deleted ${r.deleted}`,
    }),
    bounce: spec("queue.bounce", {
      usage: "queue bounce ID | --domain D | --all",
      summary: "fail pending recipients now and send the sender a DSN",
      options: ["domain", "all"],
      positionals: ["id?"],
      args: idOrSelection("bounce"),
      text: (r) => `${r.bounced} message(s) bounced`,
    }),
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
  },
  smtp: {
    connections: spec("smtp.connections", {
      usage: "smtp connections",
      summary: "active SMTP sessions",
      args: noArgs,
      text: (r) => sessionsText(r.sessions),
    }),
  },
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
};
