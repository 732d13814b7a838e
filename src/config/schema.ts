/**
 * The typed, validated shape of config.toml. Every key has a safe default so an
 * empty file is a working loopback-only MTA; unknown keys are errors (typo safety).
 * @module
 */
import { z } from "zod";
import { count, domain, duration, hostPort, network, size } from "./types.ts";
import { modulesConfig } from "./modules.ts";
import { recipientsConfig } from "./recipients.ts";
import { webConfig } from "./web.ts";
import { mtaStsConfig, tlsRptConfig } from "./transport_security.ts";
import { authConfig, dkimConfig } from "./auth_schema.ts";

const role = z.enum(["mx", "submission", "smtps"], {
  error: 'expected "mx" (port 25 style), "submission" (587, AUTH+STARTTLS) or "smtps" (465, implicit TLS)',
});

/** Delivery priority of a message (see README "Priority"). */
const priority = z.enum(["critical", "high", "normal", "low"], {
  error: 'expected "critical", "high", "normal" or "low"',
});

const listener = z.strictObject({
  name: z.string().min(1).optional(),
  address: hostPort,
  role: role.default("mx"),
  /** PROXY protocol (v1 and v2) header expected from these networks; empty = off. */
  proxy_protocol: z.array(network).default([]),
  /** Per-listener certificate, overriding [tls]. */
  tls_cert: z.string().optional(),
  tls_key: z.string().optional(),
  /** Delivery priority of mail received here (a user's or a module's level overrides it). */
  priority: priority.optional(),
});

const timeouts = z.strictObject({
  /** RFC 5321 4.5.3.2.7: server waits 5 minutes for the next command. */
  command: duration.default(5 * 60_000),
  /** RFC 5321 4.5.3.2.5: 3 minutes between DATA blocks. */
  data_block: duration.default(3 * 60_000),
  /** How long a client may take to send its PROXY header or finish the TLS handshake. */
  handshake: duration.default(30_000),
});

/** Longest AUTH failure delay accepted: longer holds sessions open until clients time out. */
const MAX_AUTH_DELAY = 60_000;

/** `[smtp.auth]`: slowing down and locking out password guessing (see README "AUTH failures"). */
const smtpAuth = z.strictObject({
  /** Delay before the 535 of the first failed AUTH in a session; it doubles with each further failure. "0s" = none. */
  failure_delay: duration.default(1_000),
  /** Upper bound of that growing delay. */
  max_failure_delay: duration.default(5_000),
  /** Failed AUTH attempts allowed per session; the last one's 535 is followed by 421 4.7.0 and disconnect. */
  max_failures: count.default(3),
  /** Failed AUTH attempts per client address (IPv6: per /64) within ip_window before AUTH gets 454 4.7.0; 0 = no limit. */
  ip_max_failures: z.number({ error: "expected a whole number of failures (0 turns the per-address limit off)" })
    .int({ error: "expected a whole number of failures (0 turns the per-address limit off)" })
    .min(0, { error: "expected a whole number of failures (0 turns the per-address limit off)" })
    .default(10),
  /** How far back failures of one client address are counted. */
  ip_window: duration.default(600_000),
}).superRefine((auth, ctx) => {
  if (auth.max_failure_delay > MAX_AUTH_DELAY) {
    ctx.addIssue({
      code: "custom",
      path: ["max_failure_delay"],
      message: 'expected at most "60s" (longer delays hold sessions open until clients time out)',
    });
  }
  if (auth.failure_delay > auth.max_failure_delay) {
    ctx.addIssue({
      code: "custom",
      path: ["failure_delay"],
      message: `expected at most smtp.auth.max_failure_delay ("${auth.max_failure_delay / 1000}s")`,
    });
  }
  if (auth.ip_window <= 0) {
    ctx.addIssue({ code: "custom", path: ["ip_window"], message: 'expected a duration above zero, like "10m"' });
  }
});

const smtp = z.strictObject({
  hostname: z.string().min(1).optional(),
  banner: z.string().default("Empath ESMTP"),
  max_message_size: size.default(25 * 1000 * 1000),
  max_recipients: count.default(100),
  max_connections: count.default(1000),
  max_connections_per_ip: count.default(50),
  /** Pause before the 220 greeting; a client that talks during it is an early talker and is refused. */
  greet_delay: duration.default(0),
  /** Error replies allowed per session before 421 and disconnect. */
  max_errors: count.default(10),
  /** Longest accepted message line in octets including CRLF (RFC 5321 4.5.3.1.6: 1000). */
  max_line_length: count.default(1000),
  /** Bare CR or LF in message data: "reject" (554 5.6.0) or "normalize" to CRLF. */
  bare_newline: z.enum(["reject", "normalize"]).default("reject"),
  /** Received headers above this mean a mail loop (RFC 5321 6.3). */
  max_received_headers: count.default(50),
  /** Largest header section accepted; a larger one is refused with 552 5.3.4 (never passed on uninspected). */
  max_header_size: size.default(256 * 1024),
  timeouts: timeouts.prefault({}),
  /**
   * Message data earns one second beyond timeouts.data_block per this many bytes received
   * (Postfix smtpd_min_data_rate); a client dripping slower is cut with 421. 0 = data_block only.
   */
  min_data_rate: z.number({ error: "expected a whole number of bytes per second (0 or more)" }).int().min(0)
    .default(500),
  auth: smtpAuth.prefault({}),
});

const tls = z.strictObject({
  cert: z.string().optional(),
  key: z.string().optional(),
  /** Re-read cert/key when the files change. */
  watch: z.boolean().default(true),
});

const relay = z.strictObject({
  /** Domains we accept mail for as the final destination (MX role). */
  local_domains: z.array(domain).default(["localhost"]),
  /** Clients in these networks may relay to any domain. */
  relay_networks: z.array(network).default(["127.0.0.0/8", "::1/128"]),
  /**
   * Mail from outside clients (not in relay_networks, not authenticated) needs a sender domain that can
   * receive mail (MX or address records): 550 5.1.8 otherwise, 450 4.1.8 when DNS fails. Address-literal
   * senders from such clients are always refused. Both keep bounces from reaching forged third parties.
   */
  reject_unknown_sender_domain: z.boolean().default(true),
});

/** `[auth]`: SMTP AUTH users, and the inbound SPF/DKIM/DMARC/ARC checks on mx listeners (auth_schema.ts). */
const auth = z.strictObject({
  /** "user:scrypt$…" lines; see README "Adding a user". */
  users_file: z.string().optional(),
  ...authConfig.shape,
});

const spool = z.strictObject({
  /** fsync data and directory before acknowledging; never turn off in production. */
  fsync: z.boolean().default(true),
});

const queue = z.strictObject({
  backend: z.enum(["kv", "file", "postgres"], { error: 'expected "kv" (Deno KV), "file" or "postgres"' }).default("kv"),
  /** Path or remote URL for Deno KV; default <data_dir>/queue.kv. */
  kv_path: z.string().optional(),
  /** backend "postgres": postgres://user:pass@host:port/db (default: the PG* environment variables). */
  url: z.string().regex(/^postgres(ql)?:\/\//, { error: 'expected "postgres://user:password@host:port/database"' })
    .optional(),
  /** backend "postgres": connections in this node's pool. */
  pool_size: z.number().int().min(2).max(1000).default(10),
  /** How long a claimed message stays leased to a node without renewal (a dead node's mail waits this long). */
  lease: duration.default(300_000),
  /** backend "postgres": how often a node heartbeats (a node silent for 3 beats counts as gone). */
  heartbeat: duration.default(5_000),
  /** backend "postgres": at start, keep retrying an unreachable server this long before giving up ("0s": at once). */
  connect_wait: duration.default(60_000),
  /** backend "postgres": a node silent this long is removed from `empath_nodes` (shown as dead until then). */
  node_forget: duration.default(86_400_000),
  /** Delivery priority per authenticated user (overrides the listener's; a module's overrides it). */
  priority_users: z.record(z.string(), priority).default({}),
  /** Delivered recipients remembered (so no retry sends again): at most this many, ... */
  dedup_max: count.default(200_000),
  /** ... and for at most this long. */
  dedup_max_age: duration.default(7 * 86_400_000),
});

const log = z.strictObject({
  level: z.enum(["trace", "debug", "info", "warning", "error", "fatal"]).default("info"),
  format: z.enum(["auto", "text", "json"]).default("auto"),
});

const tlsPolicy = z.enum(["none", "opportunistic", "required", "dane", "dane-only"], {
  error: 'expected "none", "opportunistic" (STARTTLS when offered), "required", "dane" or "dane-only"',
});

const lmtpTarget = z.string().regex(/^unix:.+$|^(?:\[[^\]]+\]|[^:\s]+):\d{1,5}$/, {
  error: 'expected "unix:/path/to/socket" or "host:port"',
});

const domainPolicy = z.strictObject({
  /** "host:port" to use instead of MX lookup (smart host / testing). */
  mx_override: hostPort.optional(),
  tls: tlsPolicy.optional(),
  accept_invalid_certs: z.boolean().optional(),
  /** Concurrent connections to this destination. */
  max_connections: count.optional(),
  /** Messages per second to this destination (token bucket). */
  rate: z.number().positive({ error: "expected messages per second, e.g. 10 or 0.5" }).optional(),
  /** How mail leaves: "smtp" (MX routing; default), "lmtp" (local delivery, `lmtp`), "http" (webhook, `url`). */
  transport: z.enum(["smtp", "lmtp", "http"], { error: 'expected "smtp", "lmtp" or "http"' }).optional(),
  /** LMTP server: "unix:/run/dovecot/lmtp" or "host:port". */
  lmtp: lmtpTarget.optional(),
  /** Webhook URL (transport = "http"); `format` "raw" (RFC 5322 body) or "json"; `secret` signs requests. */
  url: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" }).optional(),
  format: z.enum(["raw", "json"], { error: 'expected "raw" or "json"' }).optional(),
  secret: z.string().min(1).optional(),
  /** format = "json": attachments inline as "base64" (default) or as "url"s into `attachment_dir`. */
  attachments: z.enum(["base64", "url"], { error: 'expected "base64" or "url"' }).optional(),
  attachment_dir: z.string().optional(),
  attachment_base_url: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" }).optional(),
  request_timeout: duration.optional(),
  /** Mutual TLS for the webhook: client certificate and key, extra CA (PEM files). */
  client_cert: z.string().optional(),
  client_key: z.string().optional(),
  ca_file: z.string().optional(),
}).refine((p) => p.transport !== "lmtp" || p.lmtp, { error: 'transport = "lmtp" needs lmtp = "unix:/path"' })
  .refine((p) => p.transport !== "http" || p.url, { error: 'transport = "http" needs url = "https://…"' })
  .refine((p) => p.attachments !== "url" || (p.attachment_dir && p.attachment_base_url), {
    error: 'attachments = "url" needs attachment_dir and attachment_base_url',
  });

const delivery = z.strictObject({
  enabled: z.boolean().default(true),
  /** Deliveries in flight at once, all destinations together. */
  concurrency: count.default(100),
  /** Default connections per destination domain. */
  max_connections_per_domain: count.default(20),
  /**
   * Outbound SMTP sessions run in a Worker thread (another core). Off by default: on a 2-core machine it measured
   * slower (more CPU per message for the hand-offs than it frees; docs/PERFORMANCE.md).
   */
  worker: z.boolean().default(false),
  /** Name in EHLO; default smtp.hostname. */
  helo_name: z.string().optional(),
  /** Send everything through this host ("host:port") instead of MX lookup. */
  relay_host: hostPort.optional(),
  /** TCP port used for hosts found by MX/A lookup (25; other values are for labs and tests). */
  port: z.number().int().min(1).max(65535, { error: "expected a TCP port 1-65535" }).default(25),
  tls: tlsPolicy.default("opportunistic"),
  accept_invalid_certs: z.boolean().default(false),
  /** Postfix maximal_queue_lifetime: 5 days, then bounce. */
  max_queue_lifetime: duration.default(5 * 86_400_000),
  /** How long SIGTERM waits for in-flight deliveries. */
  grace_period: duration.default(30_000),
  retry: z.strictObject({
    /** Postfix minimal_backoff_time (300s). */
    base_delay: duration.default(300_000),
    /** Postfix maximal_backoff_time (4000s). */
    max_delay: duration.default(4_000_000),
    factor: z.number().min(1, { error: "expected a factor of at least 1, e.g. 2" }).default(2),
    /** Random spread of each delay, as a fraction (0.1 = ±10%). */
    jitter: z.number().min(0).max(1).default(0.1),
  }).prefault({}),
  timeouts: z.strictObject({
    connect: duration.default(30_000),
    greeting: duration.default(300_000),
    command: duration.default(300_000),
    data_block: duration.default(180_000),
    data_end: duration.default(600_000),
    /** The STARTTLS handshake with a next hop must be done within this long (absolute deadline). */
    tls_handshake: duration.default(30_000),
  }).prefault({}),
  pool: z.strictObject({
    idle_timeout: duration.default(30_000),
    max_messages_per_connection: count.default(100),
  }).prefault({}),
  dns: z.strictObject({
    /** "ip:port" of the resolver to ask; default: the system's. */
    nameserver: hostPort.optional(),
    timeout: duration.default(5_000),
    /** The longest an answer is kept (its TTL, when shorter, wins). */
    cache_ttl: duration.default(300_000),
    /** The shortest an answer is kept, whatever its TTL. */
    min_ttl: duration.default(10_000),
    /** The longest a negative answer (NXDOMAIN, NODATA) is kept. */
    negative_ttl: duration.default(60_000),
    /** Cache size (least recently used answers go first). */
    max_entries: z.number().int().min(1).default(10_000),
    /** A name in a signed zone asked at start-up to see whether the resolver validates ("." = the root). */
    dnssec_probe: z.string().default("."),
  }).prefault({}),
  /** Extra CA certificates (PEM file) trusted for next hops' STARTTLS (private PKI). */
  tls_ca_file: z.string().optional(),
  mta_sts: mtaStsConfig.prefault({}),
  tls_rpt: tlsRptConfig.prefault({}),
  circuit_breaker: z.strictObject({
    /** Consecutive connection failures that open the breaker for a destination. */
    failures: count.default(5),
    /** How long the breaker stays open before one probe is allowed. */
    cooldown: duration.default(60_000),
  }).prefault({}),
  /** LMTP server for relay.local_domains without their own `transport` ("lmtp:unix:/path", "lmtp:host:port"). */
  local_transport: z.string().regex(/^lmtp:/, { error: 'expected "lmtp:unix:/path" or "lmtp:host:port"' })
    .pipe(z.string().transform((t) => t.slice(5)).pipe(lmtpTarget)).optional(),
  /** Per-domain settings: `[delivery.domains."example.com"]` or `"*.example.com"`. */
  domains: z.record(domain, domainPolicy).default({}),
});

const dsn = z.strictObject({
  /** Warn the sender once when a message has waited this long ("0" turns warnings off). */
  delay_warning: duration.default(4 * 3_600_000),
  /** Without RET, return the full message up to this size, only its headers above (Postfix bounce_size_limit). */
  full_message_limit: size.default(50_000),
});

const http = z.strictObject({
  enabled: z.boolean().default(true),
  /** /metrics and /health/*; keep it on loopback or behind a firewall. */
  address: hostPort.default({ host: "127.0.0.1", port: 9425 }),
  /** Domains that get their own label in per-domain metrics; the rest are "other". */
  metrics_domains: count.default(20),
});

const audit = z.strictObject({
  enabled: z.boolean().default(true),
  /** JSON lines file (rotated daily); "-" writes to stdout; default <data_dir>/audit.log. */
  file: z.string().optional(),
  /** Rotated files (audit.log.YYYY-MM-DD) kept this many days; 0 keeps all. */
  retain_days: z.number().int().min(0, { error: "expected a number of days (0 keeps every file)" }).default(30),
});

const control = z.strictObject({
  enabled: z.boolean().default(true),
  /** Unix socket path (mode 0600); default <data_dir>/control.sock. */
  socket: z.string().optional(),
  /** A file holding a shared secret every request must carry (optional; the socket mode is the main guard). */
  token_file: z.string().optional(),
  /** Largest request frame the daemon reads. */
  max_request: size.default(64 * 1024),
  /** A client must send a complete request within this time, and is disconnected after this long idle. */
  timeout: duration.default(30_000),
});

/** Delivery-event types a webhook can subscribe to. */
export const EVENT_TYPES = ["delivered", "deferred", "bounced", "expired", "dsn-sent", "received"] as const;

/** `[[events.webhooks]]`: delivery events pushed (batched, signed) to a URL; see README "Delivery-event webhooks". */
const eventWebhook = z.strictObject({
  /** Names the subscription in metrics and in the outbox (default: the URL). */
  name: z.string().min(1).optional(),
  url: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" }),
  /** Signs each request the Standard Webhooks way (as the http transport). */
  secret: z.string().min(1).optional(),
  events: z.array(z.enum(EVENT_TYPES, { error: `expected one of ${EVENT_TYPES.join(", ")}` }))
    .default(["delivered", "deferred", "bounced", "expired", "dsn-sent"]),
  /** Events per request. */
  batch_size: count.default(100),
  timeout: duration.default(10_000),
  /** Longest wait between retries of a failing subscriber (backoff doubles from 1s). */
  max_backoff: duration.default(300_000),
});

/** The whole config file. */
export const configSchema = z.strictObject({
  data_dir: z.string().default("./var"),
  listeners: z.array(listener).min(1).default([{
    address: { host: "127.0.0.1", port: 2525 },
    role: "mx",
    proxy_protocol: [],
  }]),
  smtp: smtp.prefault({}),
  tls: tls.prefault({}),
  relay: relay.prefault({}),
  recipients: recipientsConfig.prefault({}),
  auth: auth.prefault({}),
  /** `[dkim]`: outbound DKIM signing (see README "DKIM"). */
  dkim: dkimConfig.prefault({}),
  spool: spool.prefault({}),
  queue: queue.prefault({}),
  log: log.prefault({}),
  delivery: delivery.prefault({}),
  dsn: dsn.prefault({}),
  http: http.prefault({}),
  audit: audit.prefault({}),
  control: control.prefault({}),
  /** `[web]`: the operator console (see README "Web console"). */
  web: webConfig,
  events: z.strictObject({ webhooks: z.array(eventWebhook).default([]) }).prefault({}),
  /** `[[modules]]`: plugins over the SMTP and delivery lifecycle, run in this order (see README "Modules"). */
  modules: modulesConfig,
});

/** The validated config, after defaults and unit parsing. */
export type Config = z.output<typeof configSchema>;
/** One listener's config. */
export type ListenerConfig = Config["listeners"][number];
/** The [delivery] section. */
export type DeliveryConfig = Config["delivery"];
/** One `[delivery.domains."…"]` table. */
export type DomainPolicyConfig = DeliveryConfig["domains"][string];
/** One `[[events.webhooks]]` subscription. */
export type EventWebhookConfig = Config["events"]["webhooks"][number];
/** A delivery-event type. */
export type EventType = (typeof EVENT_TYPES)[number];
