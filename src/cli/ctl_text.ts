/**
 * How `empathctl` shows control answers to people: one renderer per result
 * type of the control API (with --json the result is printed as is instead).
 * @module
 */
import type {
  CacheEntry,
  ClusterNodeRow,
  DestinationRow,
  QueueListResult,
  QueueStatsResult,
  QueueViewResult,
  SessionRow,
  StatusCounts,
  StatusResult,
  Suspension,
  Totals,
} from "../control/mod.ts";
import { age, bytes, clip, iso, since, table, until } from "./ctl_format.ts";

const statusLine = (counts: StatusCounts) => Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ");
const waiting = (status: string) => status === "queued" || status === "deferred";
const valueText = (e: CacheEntry) => clip(e.error ?? JSON.stringify(e.value), 80);

/** `queue list`: one row per message. */
export function messageRows(r: QueueListResult): string {
  return table(
    ["ID", "STATUS", "AGE", "SIZE", "FROM", "RCPT", "NEXT", "LAST REPLY"],
    r.messages.map((m) => [
      m.id,
      m.status,
      since(m.receivedAt),
      bytes(m.size),
      clip(m.sender || "<>", 30),
      m.pending === m.recipients ? m.recipients : `${m.pending}/${m.recipients}`,
      waiting(m.status) ? until(m.nextAttemptAt) : "-",
      clip(m.lastReply, 50),
    ]),
  ) + (r.truncated ? "\n(more messages match: raise --limit)" : "") + `\n${r.messages.length} message(s)`;
}

/** `queue view`: envelope, headers, recipients and attempts of one message. */
export function viewText(r: QueueViewResult): string {
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
    `  next        ${waiting(r.status) ? `${iso(r.nextAttemptAt)} (${until(r.nextAttemptAt)})` : "-"}`,
    "Headers",
    ...Object.entries(r.headers ?? {}).map(([k, v]) => `  ${k.padEnd(11)} ${v}`),
    "Recipients",
    table(
      ["  ADDRESS", "STATUS", "TRIES", "LAST REPLY"],
      r.recipients.map((x) => [`  ${x.address}`, x.status, x.attempts, clip(x.lastReply, 70)]),
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

/** `system status`. */
export function statusText(r: StatusResult): string {
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
    `listeners   ${r.listeners.map((l) => `${l.name} ${l.host}:${l.port} (${l.role})`).join(", ")}`,
    `queue       ${statusLine(r.queue)}; oldest ${age(r.oldestAgeSeconds)}`,
    `delivery    ${r.deliveryEnabled ? "enabled" : "disabled"}${
      r.deliveryFrozen ? ", FROZEN" : ""
    }, ${r.inFlight} in flight`,
    `smtp        ${r.smtpSessions} session(s)`,
    `dns cache   ${r.dnsCacheEntries} entries`,
    `log level   ${r.logLevel}`,
    ...(r.cluster ? [`cluster     node ${r.cluster.node}`, clusterNodesText(r.cluster.nodes)] : []),
  ].join("\n");
}

/** `cluster nodes`: every node, alive or not, its leases and last heartbeat. */
export function clusterNodesText(nodes: ClusterNodeRow[]): string {
  if (nodes.length === 0) return "not a cluster (queue.backend is not postgres)";
  return table(
    ["NODE", "STATE", "LEASES", "IN FLIGHT", "LAST HEARTBEAT", "VERSION"],
    nodes.map((n) => [
      n.node,
      n.alive ? "alive" : n.stoppedAt ? "stopped" : "dead",
      n.leases,
      Number(n.info.inFlight ?? 0),
      iso(n.heartbeatAt),
      n.version,
    ]),
  );
}

/** Text of `queue stats`; `previous` gives rates between two samples (watch mode). */
export function statsText(r: QueueStatsResult, previous?: QueueStatsResult): string {
  const span = previous ? (r.at - previous.at) / 1000 : (r.at - r.startedAt) / 1000;
  const base: Totals = previous?.totals ?? { received: 0, delivered: 0, deferred: 0, failed: 0 };
  const rate = (k: keyof Totals) => (span > 0 ? ((r.totals[k] - base[k]) / span).toFixed(1) : "0.0");
  return [
    `queue       ${r.total} message(s): ${statusLine(r.counts)}`,
    `oldest      ${age(r.oldestAgeSeconds)}`,
    `rates/s     received ${rate("received")}, delivered ${rate("delivered")}, deferred ${rate("deferred")}, failed ${
      rate("failed")
    } (${previous ? `last ${span.toFixed(1)}s` : "since start"})`,
    r.domains.length
      ? table(["DOMAIN", "MESSAGES"], r.domains.map((d) => [d.domain, d.messages]))
      : "no domains queued",
  ].join("\n");
}

/** `queue suspended`. */
export const suspensionsText = (suspensions: Suspension[]) =>
  suspensions.length
    ? table(["DOMAIN", "UNTIL", "LIFTS"], suspensions.map((s) => [s.domain, iso(s.until), until(s.until)]))
    : "no destination is suspended";

/** `queue summary`: one row per destination. */
export const destinationsText = (destinations: DestinationRow[]) =>
  destinations.length
    ? table(
      ["DESTINATION", "MESSAGES", "OLDEST", "STATE", "CONN", "LAST ERROR"],
      destinations.map((d) => [
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
    : "the queue is empty";

/** `dns list-cache`. */
export const cacheText = (entries: CacheEntry[]) =>
  table(
    ["NAME", "TYPE", "EXPIRES", "VALUE"],
    entries.map((e) => [e.name, e.type, until(e.expiresAt), valueText(e)]),
  ) + `\n${entries.length} entries`;

/** `dns refresh`: the domain's fresh entries. */
export const refreshedText = (domain: string, entries: CacheEntry[]) =>
  `${domain} refreshed\n` + table(["NAME", "TYPE", "VALUE"], entries.map((e) => [e.name, e.type, valueText(e)]));

/** `smtp connections`. */
export const sessionsText = (sessions: SessionRow[]) =>
  table(
    ["ID", "LISTENER", "PEER", "STATE", "TLS", "HELO", "USER", "AGE"],
    sessions.map((s) => [
      s.id,
      s.listener,
      s.peer,
      s.state,
      s.tls ? (s.tlsVersion ? `${s.tlsVersion} ${s.tlsCipher ?? ""}`.trim() : "yes") : "no",
      clip(s.helo, 40),
      s.user,
      age(s.ageSeconds),
    ]),
  ) + `\n${sessions.length} session(s)`;
